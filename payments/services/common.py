"""What every stage of a transfer's life shares: the MTN client, the row lock, the callback
URL, and how an MTN error is described in ``last_error``."""

from __future__ import annotations

import dataclasses
import threading
from datetime import timedelta

from django.conf import settings

from mtn.client import MtnClient, MtnConfig
from mtn.errors import MtnError
from payments.models import MoneyTransfer

_client_local = threading.local()


def mtn_client(*, quick: bool = False) -> MtnClient:
    """One MTN client (and HTTP connection pool) per thread and configuration.

    ``quick`` gives short timeouts, for calls made while MTN waits on our answer to its
    callback (it gives up after about 2 seconds).
    """
    config = MtnConfig.from_settings()
    if quick:
        config = dataclasses.replace(config, connect_timeout=1.0, read_timeout=1.5)
    clients = getattr(_client_local, "clients", None)
    if clients is None:
        clients = _client_local.clients = {}
    client = clients.get(config)
    if client is None:
        client = clients[config] = MtnClient(config)
    return client


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


def callback_url_for(transfer: MoneyTransfer) -> str | None:
    if not settings.MTN_CALLBACK_URL:
        return None
    return f"{settings.MTN_CALLBACK_URL}/api/v1/webhooks/mtn/{transfer.callback_token}"


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
