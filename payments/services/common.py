"""What every stage of a transfer's life shares: the row lock, the callback URL, and how an MTN
error is described in ``last_error``."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings

from mtn.client import _clients as _client_local
from mtn.errors import MtnError
from mtn.models import MtnAccount
from payments.models import MoneyTransfer
from payments.routing import transfer_account, transfer_callback_url

# What the stages import from here. ``_client_local`` is the per-thread registry of MTN
# clients (one per account configuration), which tests empty between cases.
__all__ = [
    "_client_local",
    "callback_url_for",
    "describe_mtn_error",
    "in_request_lease",
    "lock_transfer",
    "transfer_account",
]


def in_request_lease() -> timedelta:
    """How long the web request that created a payment owns its first submission.

    The worker leaves the payment alone for this long, so that it does not race the request;
    if the request's process dies, the worker picks the payment up when the lease ends.
    """
    return timedelta(
        seconds=settings.MTN_SUBMIT_MAX_SECONDS
        + settings.MTN_CONNECT_TIMEOUT
        + settings.MTN_READ_TIMEOUT
        + 5
    )


def callback_url_for(transfer: MoneyTransfer, account: MtnAccount | None = None) -> str | None:
    """The X-Callback-Url for ``transfer``, from the callback base URL of the account that
    carries it (``account``, read when not given); None when that account has none."""
    return transfer_callback_url(transfer, account or transfer_account(transfer))


def lock_transfer(transfer: MoneyTransfer) -> MoneyTransfer:
    """The transfer's row, freshly read and locked until the caller's transaction ends."""
    return (
        type(transfer)
        ._default_manager.select_related("tenant")
        .select_for_update(of=("self",))
        .get(pk=transfer.pk)
    )


def describe_mtn_error(exc: MtnError) -> str:
    status = f" (HTTP {exc.status_code})" if exc.status_code else ""
    return f"{exc.code}{status}: {exc.message}"[:500]
