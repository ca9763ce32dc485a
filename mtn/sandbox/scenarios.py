"""MTN's sandbox test numbers as data (reference section 7).

Observed on the wire: …450–…452 FAILED at once, …453 PENDING forever, …454 PENDING then
SUCCESSFUL; …455–…463 follow MTN's documented use-case table, which differs between
requesttopay and transfer/deposit. Any other number succeeds immediately.
"""

from __future__ import annotations

from dataclasses import dataclass

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
}


@dataclass(frozen=True)
class Outcome:
    """What a sandbox number does: a final status now, or PENDING (maybe resolving later)."""

    status: str
    reason: str | None = None
    # For PENDING: resolve to SUCCESSFUL after the configured delay (…454) or never (…453).
    resolves_later: bool = False


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


def transaction_outcome(kind: str, party_id: str) -> Outcome:
    """Outcome for ``kind`` ("requesttopay" or "transfer") and the payer/payee number."""
    if party_id in _COMMON:
        return _COMMON[party_id]
    table = _REQUEST_TO_PAY if kind == "requesttopay" else _TRANSFER
    reason = table.get(party_id)
    if reason:
        return Outcome(FAILED, reason)
    return SUCCESS


@dataclass(frozen=True)
class AccountHolderAnswer:
    http_status: int
    body: dict


def account_holder_answer(party_id: str) -> AccountHolderAnswer:
    """accountholder/{type}/{id}/active per section 7.2 (…450 404, …452–…455 errors)."""
    errors = {
        "46733123450": (404, "RESOURCE_NOT_FOUND"),
        "46733123452": (500, "NOT_ALLOWED"),
        "46733123453": (500, "NOT_ALLOWED_TARGET_ENVIRONMENT"),
        "46733123454": (500, "INTERNAL_PROCESSING_ERROR"),
        "46733123455": (503, "SERVICE_UNAVAILABLE"),
    }
    if party_id in errors:
        status, code = errors[party_id]
        return AccountHolderAnswer(status, {"code": code, "message": REASON_MESSAGES[code]})
    return AccountHolderAnswer(200, {"result": party_id != "46733123451"})
