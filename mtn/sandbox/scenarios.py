"""MTN's sandbox test numbers as data (reference section 7).

Observed on the wire: …450–…452 FAILED at once, …453 PENDING forever, …454 PENDING then
SUCCESSFUL; …455–…463 follow MTN's documented use-case table, which differs between
requesttopay and transfer/deposit. Any other number succeeds immediately.

Refunds are decided by the number of the payer of the collection being refunded. Only a
SUCCESSFUL collection can be refunded, and every magic number but …454 makes its collection
fail, so refunds get their own range: a collection from 4673312347N succeeds, and its refund
then does what a transfer to 4673312345N does (…470 FAILED, …473 PENDING forever, …474
PENDING then SUCCESSFUL, …475 NOT_ENOUGH_FUNDS ...).

All these numbers are the sandbox's: a simulator that is a production market (``mtnuganda``)
treats them as the ordinary numbers they are there. What holds everywhere: an MSISDN that is
not all digits (``+256...``, spaces) is accepted and then FAILED with PAYER_NOT_FOUND
(PAYEE_NOT_FOUND for a payee), as MTN does with the formats it cannot resolve.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

FAILED = "FAILED"
PENDING = "PENDING"
SUCCESSFUL = "SUCCESSFUL"

REASON_MESSAGES = {
    "INTERNAL_PROCESSING_ERROR": "An internal error occurred while processing.",
    "APPROVAL_REJECTED": "The payer rejected the request.",
    "EXPIRED": "The request expired before the payer approved it.",
    "PAYER_NOT_FOUND": "The payer could not be found.",
    "PAYEE_NOT_FOUND": "The payee could not be found.",
    "PAYEE_NOT_ALLOWED_TO_RECEIVE": "The payee is not allowed to receive.",
    "NOT_ALLOWED": "Authorization failed. Insufficient permissions.",
    "NOT_ALLOWED_TARGET_ENVIRONMENT": "Access to target environment is forbidden.",
    "INVALID_CALLBACK_URL_HOST": "Callback URL does not match the configured value.",
    "INVALID_CURRENCY": "Currency not supported.",
    "SERVICE_UNAVAILABLE": "Service temporarily unavailable, try again later.",
    "COULD_NOT_PERFORM_TRANSACTION": "The transaction could not be performed.",
    "NOT_ENOUGH_FUNDS": "The payer does not have enough funds.",
    "PAYER_LIMIT_REACHED": "The payer's limit has been reached.",
    "RESOURCE_NOT_FOUND": "Requested resource was not found.",
    "RESOURCE_ALREADY_EXIST": "Duplicated reference id. Creation of resource failed.",
    "NOT_SUCCESSFULLY_COMPLETED": "The transaction is not successfully completed.",
    "TRANSACTION_NOT_FOUND": "The transaction could not be found.",
}


@dataclass(frozen=True)
class Outcome:
    """What a sandbox number does: a final status now, or PENDING (maybe resolving later)."""

    status: str
    reason: str | None = None
    # For PENDING: resolve to SUCCESSFUL after the configured delay (…454) or never (…453).
    resolves_later: bool = False
    # MTN leaves financialTransactionId out of some SUCCESSFUL answers too (its sandbox
    # notebook's deposit); …490 does so, so that a client is tested without one.
    has_financial_id: bool = True


_COMMON = {
    "46733123450": Outcome(FAILED, "INTERNAL_PROCESSING_ERROR"),
    "46733123451": Outcome(FAILED, "APPROVAL_REJECTED"),
    "46733123452": Outcome(FAILED, "EXPIRED"),
    "46733123453": Outcome(PENDING),
    "46733123454": Outcome(PENDING, resolves_later=True),
}

_REQUEST_TO_PAY = {
    "46733123455": "PAYER_NOT_FOUND",
    "46733123456": "PAYEE_NOT_ALLOWED_TO_RECEIVE",
    "46733123457": "NOT_ALLOWED",
    "46733123458": "NOT_ALLOWED_TARGET_ENVIRONMENT",
    "46733123459": "INVALID_CALLBACK_URL_HOST",
    "46733123460": "INVALID_CURRENCY",
    "46733123461": "INTERNAL_PROCESSING_ERROR",
    "46733123462": "SERVICE_UNAVAILABLE",
    "46733123463": "COULD_NOT_PERFORM_TRANSACTION",
}

_TRANSFER = {
    "46733123455": "NOT_ENOUGH_FUNDS",
    "46733123456": "PAYER_LIMIT_REACHED",
    "46733123457": "PAYEE_NOT_FOUND",
    "46733123458": "NOT_ALLOWED",
    "46733123459": "NOT_ALLOWED_TARGET_ENVIRONMENT",
    "46733123460": "INVALID_CALLBACK_URL_HOST",
    "46733123461": "INVALID_CURRENCY",
    "46733123462": "INTERNAL_PROCESSING_ERROR",
    "46733123463": "SERVICE_UNAVAILABLE",
}

SUCCESS = Outcome(SUCCESSFUL)
SUCCESS_WITHOUT_FINANCIAL_ID_NUMBER = "46733123490"
_SUCCESS_WITHOUT_FINANCIAL_ID = Outcome(SUCCESSFUL, has_financial_id=False)


def party_not_found(kind: str, party: dict[str, Any]) -> Outcome | None:
    """FAILED for an MSISDN MTN cannot resolve (not all digits: ``+256...``), in any market.

    MTN answers such a request 202 and fails it later (four formats seen in production: 202,
    then FAILED / PAYER_NOT_FOUND); it does not refuse it with a 400.
    """
    party_id = str(party.get("partyId", ""))
    if party.get("partyIdType") == "MSISDN" and not party_id.isdigit():
        return Outcome(FAILED, "PAYER_NOT_FOUND" if kind == "requesttopay" else "PAYEE_NOT_FOUND")
    return None


def transaction_outcome(kind: str, party_id: str, *, sandbox: bool = True) -> Outcome:
    """Outcome for ``kind`` ("requesttopay" or "transfer") and the payer/payee number.

    The test numbers exist only in MTN's sandbox: with ``sandbox`` False (a production
    market) every number succeeds.
    """
    if not sandbox:
        return SUCCESS
    if party_id == SUCCESS_WITHOUT_FINANCIAL_ID_NUMBER:
        return _SUCCESS_WITHOUT_FINANCIAL_ID
    if party_id in _COMMON:
        return _COMMON[party_id]
    table = _REQUEST_TO_PAY if kind == "requesttopay" else _TRANSFER
    reason = table.get(party_id)
    if reason:
        return Outcome(FAILED, reason)
    return SUCCESS


# 4673312347N (N = 0..13, i.e. …470–…483) refunds like 4673312345N transfers.
REFUND_NUMBERS = range(46733123470, 46733123484)
REFUND_NUMBER_OFFSET = 20


def refund_outcome(original_payer: str, *, sandbox: bool = True) -> Outcome:
    """Outcome of a refund of a SUCCESSFUL collection whose payer was ``original_payer``."""
    party = original_payer
    if party.isdigit() and int(party) in REFUND_NUMBERS:
        party = str(int(party) - REFUND_NUMBER_OFFSET)
    return transaction_outcome("transfer", party, sandbox=sandbox)


@dataclass(frozen=True)
class AccountHolderAnswer:
    http_status: int
    body: dict[str, Any]


# Account-holder scenarios (section 7.1): …450 is a number MTN does not know (404), …451 a
# holder whose wallet is not active, …452–…455 errors of MTN's.
UNKNOWN_HOLDER = "46733123450"
INACTIVE_HOLDER = "46733123451"
_HOLDER_ERRORS = {
    UNKNOWN_HOLDER: (404, "RESOURCE_NOT_FOUND"),
    "46733123452": (500, "NOT_ALLOWED"),
    "46733123453": (500, "NOT_ALLOWED_TARGET_ENVIRONMENT"),
    "46733123454": (500, "INTERNAL_PROCESSING_ERROR"),
    "46733123455": (503, "SERVICE_UNAVAILABLE"),
}


def _holder_error(party_id: str) -> AccountHolderAnswer | None:
    if party_id not in _HOLDER_ERRORS:
        return None
    status, code = _HOLDER_ERRORS[party_id]
    return AccountHolderAnswer(status, {"code": code, "message": REASON_MESSAGES[code]})


def account_holder_answer(party_id: str, *, sandbox: bool = True) -> AccountHolderAnswer:
    """accountholder/{type}/{id}/active per section 7.2 (…450 404, …452–…455 errors); in a
    production market (``sandbox`` False) every holder is active."""
    if not sandbox:
        return AccountHolderAnswer(200, {"result": True})
    return _holder_error(party_id) or AccountHolderAnswer(
        200, {"result": party_id != INACTIVE_HOLDER}
    )


_GIVEN_NAMES = (
    "Amina", "Brian", "Grace", "Moses", "Esther", "Peter", "Sarah", "David",
    "Ruth", "Joseph", "Akosua", "Kwame", "Fatima", "Ibrahim", "Mercy", "Samuel",
)  # fmt: skip
_FAMILY_NAMES = (
    "Okello", "Mensah", "Nakato", "Banda", "Mukasa", "Asante", "Tembo", "Kato",
    "Owusu", "Mwale", "Nsubuga", "Boateng", "Phiri", "Achieng", "Diallo", "Kamara",
)  # fmt: skip


def holder_name(party_id: str) -> tuple[str, str]:
    """A (given, family) name fixed for each number, so tests and demos can expect it."""
    digest = hashlib.sha256(party_id.encode()).digest()
    given = _GIVEN_NAMES[digest[0] % len(_GIVEN_NAMES)]
    family = _FAMILY_NAMES[digest[1] % len(_FAMILY_NAMES)]
    return given, family


def basic_user_info_answer(party_id: str, *, sandbox: bool = True) -> AccountHolderAnswer:
    """accountholder/msisdn/{n}/basicuserinfo: MTN's OpenID-style body for an active holder.

    The body carries what MTN's does (birth date, gender, locale too), so that a client that
    must pass on only the name is tested against the whole thing. An unknown or inactive
    holder is 404 RESOURCE_NOT_FOUND; …452–…455 fail as on ``active`` (in the sandbox only).
    """
    failure = _holder_error(party_id) if sandbox else None
    if failure:
        return failure
    if sandbox and party_id == INACTIVE_HOLDER:
        code = "RESOURCE_NOT_FOUND"
        return AccountHolderAnswer(404, {"code": code, "message": REASON_MESSAGES[code]})
    given, family = holder_name(party_id)
    digest = hashlib.sha256(party_id.encode()).digest()
    birthdate = f"19{60 + digest[6] % 40}-{1 + digest[7] % 12:02d}-{1 + digest[8] % 28:02d}"
    return AccountHolderAnswer(
        200,
        {
            "sub": str(int.from_bytes(digest[2:6], "big")),
            "name": f"{given} {family}",
            "given_name": given,
            "family_name": family,
            "birthdate": birthdate,
            "locale": "en_UG",
            "gender": "FEMALE" if digest[9] % 2 else "MALE",
            "updated_at": 1700000000,
        },
    )
