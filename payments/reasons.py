"""Why a payment, payout or refund failed, in a sentence a merchant can show a payer.

MTN reports a failure as a reason code, sometimes with a message: a bare string such as
``"APPROVAL_REJECTED"`` on the live platform, ``{code, message}`` in its OpenAPI spec and
in synchronous errors (reference sections 6.2 and 6.3). The gateway stores the code and
whatever message came with it; this module turns them into the ``failure_reason.message``
the API, the merchant webhooks and the admin show, so that a message is never the code
repeated. It is computed when the object is shown, from what was stored, so payments that
failed before a wording changed read the new wording too.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings

from mtn.accounts import MtnAccountNotFound, mtn_account_get
from mtn.models import DEFAULT_ACCOUNT

# The only currency each MTN target environment takes (reference section 1.3).
ENVIRONMENT_CURRENCIES = {
    "sandbox": "EUR",
    "mtnuganda": "UGX",
    "mtnghana": "GHS",
    "mtnivorycoast": "XOF",
    "mtnzambia": "ZMW",
    "mtncameroon": "XAF",
    "mtnbenin": "XOF",
    "mtncongo": "XAF",
    "mtnswaziland": "SZL",
    "mtnguineaconakry": "GNF",
    "mtnsouthafrica": "ZAR",
    "mtnliberia": "LRD",
    "mtnrwanda": "RWF",
    "mtnsouthsudan": "SSP",
    "mtnnigeria": "NGN",
}

# Each MTN reason code (spec enum, failure reasons seen on the wire, sandbox scenario names)
# as a sentence for the person paying or being paid.
REASON_SENTENCES: dict[str, str] = {
    "PAYER_NOT_FOUND": (
        "The payer's number is not an active MTN Mobile Money account; check the number and "
        "its country code."
    ),
    "PAYEE_NOT_FOUND": (
        "The receiving number is not an active MTN Mobile Money account; check the number and "
        "its country code."
    ),
    "NOT_ENOUGH_FUNDS": "There was not enough money in the wallet to complete the transaction.",
    "APPROVAL_REJECTED": "The payer declined the request on their phone.",
    "PAYMENT_NOT_APPROVED": "The payer did not approve the payment.",
    "PAYER_REJECTION": "The payer declined the request on their phone.",
    "EXPIRED": "The request expired before the payer approved it; start a new payment to retry.",
    "COULD_NOT_PERFORM_TRANSACTION": (
        "MTN could not complete the transaction, usually because the payer did not approve it "
        "within about five minutes; start a new payment to retry."
    ),
    "TRANSACTION_CANCELED": "The transaction was cancelled before it completed.",
    "PAYER_LIMIT_REACHED": "The payer's wallet has reached a transaction limit set by MTN.",
    "PAYEE_NOT_ALLOWED_TO_RECEIVE": (
        "The receiving wallet cannot accept this money (it may be inactive or at its limit); "
        "use another number."
    ),
    "SENDER_ACCOUNT_NOT_ACTIVE": "The paying wallet is blocked or not yet activated.",
    "NOT_ALLOWED": (
        "MTN did not allow this transaction for the merchant's MTN account; the merchant "
        "needs to contact MTN."
    ),
    "NOT_ALLOWED_TARGET_ENVIRONMENT": (
        "MTN refused the merchant's account for this market (target environment); the "
        "gateway's MTN account settings need fixing."
    ),
    "INVALID_CALLBACK_URL_HOST": (
        "MTN refused the callback address configured for the merchant's MTN account, so "
        "nothing was sent; the gateway's MTN account settings need fixing."
    ),
    "INVALID_CURRENCY": "MTN does not accept this currency for the merchant's MTN account.",
    "SERVICE_UNAVAILABLE": "MTN Mobile Money was unavailable; please try again later.",
    "INTERNAL_PROCESSING_ERROR": (
        "MTN could not process the transaction (often the wallet lacked funds or could not be "
        "reached); start a new payment to retry."
    ),
    "RESOURCE_NOT_FOUND": "MTN has no record of this transaction.",
    "TRANSACTION_NOT_FOUND": "MTN has no record of this transaction.",
    "RESOURCE_ALREADY_EXIST": "MTN already holds a transaction under this reference.",
    "NOT_SUCCESSFULLY_COMPLETED": "The transaction was not completed.",
    "ONGOING": "The transaction was still in progress at MTN when it was reported as failed.",
    "PAYER_DELAYED": "The payer's side of the transaction was delayed and it did not complete.",
    "PAYEE_DELAYED": "The receiver's side of the transaction was delayed and it did not complete.",
    "UNKNOWN": "MTN reported the transaction as failed without giving a reason.",
}
PAYOUT_NOT_ENOUGH_FUNDS = (
    "MTN refused the transfer: the paying account lacks funds or the receiving wallet is at "
    "its limit."
)
UNKNOWN_REASON = (
    "MTN could not complete the transaction and gave a reason this gateway does not know."
)

_CODE_LIKE = re.compile(r"[A-Za-z0-9_.:-]*")


def is_sentence(message: str | None, *, code: str) -> bool:
    """A message worth showing as it is: words, not a code (``APPROVAL_REJECTED``) or empty."""
    if not message or not message.strip():
        return False
    text = message.strip()
    if text.upper() == code.upper() or _CODE_LIKE.fullmatch(text):
        return False
    return bool(re.search(r"[A-Za-z]{2,}\s+[A-Za-z]{2,}", text))


def invalid_currency_message(*, currency: str, account: str, target_environment: str) -> str:
    """Which account and target environment refused which currency, and what it takes."""
    refused = (
        f"The MTN account '{account}' (target environment '{target_environment}') does not "
        f"accept {currency}"
    )
    takes = ENVIRONMENT_CURRENCIES.get(target_environment)
    if takes is None:
        return f"{refused}; use the currency of that account's MTN market."
    if target_environment == "sandbox":
        return f"{refused}; the sandbox takes only {takes}."
    return f"{refused}; it takes only {takes}."


def failure_message(
    *,
    code: str,
    mtn_message: str | None = None,
    kind: str = "payment",
    currency: str = "",
    account: str = "default",
    target_environment: str = "",
) -> str:
    """The sentence for a failure with MTN's reason ``code`` (and MTN's ``mtn_message``).

    MTN's own message is kept when it is a real sentence; otherwise, and always for
    ``INVALID_CURRENCY`` (MTN only says "Currency not supported."), the gateway's own.
    """
    code = (code or "UNKNOWN").strip() or "UNKNOWN"
    if code == "INVALID_CURRENCY" and currency:
        return invalid_currency_message(
            currency=currency,
            account=account,
            target_environment=target_environment or settings.MTN_TARGET_ENVIRONMENT,
        )
    if is_sentence(mtn_message, code=code):
        return str(mtn_message).strip()
    if kind != "payment" and code.upper() == "NOT_ENOUGH_FUNDS":
        # On a disbursement MTN uses it for the paying account's balance or the receiver's
        # limit (reference section 6.3), not for the payer's wallet.
        return PAYOUT_NOT_ENOUGH_FUNDS
    return REASON_SENTENCES.get(code.upper(), UNKNOWN_REASON)


def _account_of(transfer: Any) -> tuple[str, str]:
    """(account name, target environment) of the MTN account that carried ``transfer``.

    The name is the one recorded on the object (``mtn_account``); ``default``, the platform
    account of the ``MTN_*`` settings, costs no query, another account one.
    """
    name = getattr(transfer, "mtn_account", "") or DEFAULT_ACCOUNT
    try:
        account = mtn_account_get(name=name)
    except MtnAccountNotFound:
        return name, settings.MTN_TARGET_ENVIRONMENT
    return name, account.target_environment or settings.MTN_TARGET_ENVIRONMENT


def transfer_failure_message(transfer: Any) -> str:
    """The failure sentence for a failed payment, payout or refund (API, webhooks, admin)."""
    code = transfer.failure_code or "UNKNOWN"
    account, environment = ("default", "")
    if code == "INVALID_CURRENCY":
        account, environment = _account_of(transfer)
    return failure_message(
        code=code,
        mtn_message=transfer.failure_message,
        kind=getattr(transfer, "kind", "payment"),
        currency=transfer.currency,
        account=account,
        target_environment=environment,
    )


def transfer_failure_reason(transfer: Any) -> dict[str, str] | None:
    """``{"code", "message"}`` as the API shows it, or None when the object did not fail."""
    if not transfer.failure_code:
        return None
    return {"code": transfer.failure_code, "message": transfer_failure_message(transfer)}
