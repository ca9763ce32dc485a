"""Which MTN account carries a payment, payout or refund, and what that means for it.

A new payment or payout is routed once, when it is created, in the contract's order (the
tenant's own account for its currency, the platform's account for it, ``default``); a
refund takes its payment's account. The account's name is stored on the object, and every
later MTN call for it goes through that account's client (``transfer_client``).

Routing runs on every create, so it is kept off the database: each web process keeps the
list of currency claims (a handful of rows) tagged with the generation of the shared
API-key cache (``tenants.key_cache``), which every change to an MTN account or its
currencies moves, after the commit too (see ``ready`` below). A create then costs one
small Redis read and no SQL; where that cache is not shared (no REDIS_URL: SQLite and the
in-process cache, for trying the gateway out), nothing is cached and routing is one indexed
query (``mtn.accounts.mtn_account_route``), so an account set by ``manage.py
mtn_account_set`` in another process is seen at once.

Whose an account is never changes (``mtn_account_set`` refuses it) and accounts are never
deleted, so whether an account name means a tenant's own wallet is remembered for the
life of the process.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.db.models.signals import post_delete, post_save

from mtn.accounts import (
    MtnAccountNotFound,
    account_callback_base_url,
    mtn_account_get,
    mtn_account_route,
    mtn_client_for,
)
from mtn.client import MtnClient
from mtn.errors import MtnConfigurationError
from mtn.models import DEFAULT_ACCOUNT, MtnAccount, MtnAccountCurrency
from payments.errors import CurrencyNotSupported
from tenants import key_cache

# A backstop: even if a generation move were lost (Redis down at that moment), a process
# sees an account change within this long.
TTL_SECONDS = 30.0
# Past this many claims, routing asks the database each time rather than hold them all.
MAX_CACHED_CLAIMS = 10_000

_lock = threading.Lock()
# (generation, expires_at, {(owner tenant id or None, currency): account name}) or None.
_claims: tuple[int, float, dict[tuple[Any, str], str]] | None = None
# Account name -> owning tenant's id (None: the platform's). Never changes for a name.
_owners: dict[str, Any] = {DEFAULT_ACCOUNT: None}
_UNKNOWN = object()


def transfer_account_route(*, tenant_id: Any, currency: str) -> str:
    """The name of the MTN account that carries a new payment or payout of this tenant in
    ``currency``: its own account for the currency, the platform's, else ``default``."""
    claims = _cached_claims()
    if claims is None:
        account = mtn_account_route(tenant_id=tenant_id, currency=currency)
        _owners.setdefault(account.name, account.tenant_id)
        return account.name
    return claims.get((tenant_id, currency)) or claims.get((None, currency)) or DEFAULT_ACCOUNT


def check_currency_carried(*, tenant_id: Any, currency: str) -> None:
    """Raise ``CurrencyNotSupported`` (422; the message names the currencies that are
    carried) when no MTN account carries ``currency`` for this tenant: no account of its own
    or of the platform's claims it, and ``MTN_CURRENCIES`` limits ``default`` to others.

    Called before anything is stored (a create's validation, a payer look-up); no query
    unless the currency is refused.
    """
    carried_by_default = settings.MTN_CURRENCIES
    if not carried_by_default or currency in carried_by_default:
        return
    if transfer_account_route(tenant_id=tenant_id, currency=currency) != DEFAULT_ACCOUNT:
        return
    claimed = MtnAccountCurrency.objects.filter(
        Q(tenant_id=tenant_id) | Q(tenant__isnull=True)
    ).values_list("currency", flat=True)
    carried = ", ".join(sorted({*carried_by_default, *claimed}))
    raise CurrencyNotSupported(
        f"No MTN account carries {currency} for you; the currencies carried are: {carried}. "
        "Nothing was created."
    )


def account_name_is_tenant_owned(name: str) -> bool:
    """Whether the account ``name`` is a tenant's own (its money never enters the ledger).

    No query for ``default`` or a name seen before; one for any other name. An unknown name
    (it cannot happen: accounts are never deleted) counts as the platform's, so that its
    money is never handed out without a balance behind it.
    """
    owner = _owners.get(name, _UNKNOWN)
    if owner is _UNKNOWN:
        owners = list(MtnAccount.objects.filter(name=name).values_list("tenant_id", flat=True))
        if not owners:
            return False
        owner = _owners[name] = owners[0]
    return owner is not None


def transfer_account(transfer: Any) -> MtnAccount:
    """The MTN account recorded on ``transfer`` (no query for ``default``).

    Raises ``MtnConfigurationError`` (retryable: nothing is sent, the worker tries again once
    the account is back) for a name no account has.
    """
    try:
        return mtn_account_get(name=transfer.mtn_account)
    except MtnAccountNotFound as exc:
        raise MtnConfigurationError(
            "ACCOUNT_NOT_FOUND",
            f"The MTN account {transfer.mtn_account!r} recorded on this {transfer.kind} does "
            "not exist.",
            retryable=True,
        ) from exc


def transfer_client(transfer: Any, *, quick: bool = False) -> MtnClient:
    """The MTN client of the account that carries ``transfer`` (see ``transfer_account``).

    ``quick`` gives short timeouts, for calls made while MTN waits on our answer to its
    callback.
    """
    return mtn_client_for(transfer_account(transfer), quick=quick)


def transfer_callback_url(transfer: Any, account: MtnAccount) -> str | None:
    """The X-Callback-Url for ``transfer`` through ``account``: None when the account has no
    callback base URL (MTN is then polled only)."""
    base = account_callback_base_url(account)
    if not base:
        return None
    return f"{base}/api/v1/webhooks/mtn/{transfer.callback_token}"


def forget_routes() -> None:
    """Drop what this process remembers of the accounts (other processes follow the shared
    generation). Called on every change of an account in this process, so that a test that
    re-creates a name with another owner is not answered from memory."""
    global _claims  # noqa: PLW0603 - one cache per process, on purpose
    with _lock:
        _claims = None
        _owners.clear()
        _owners[DEFAULT_ACCOUNT] = None


def _cached_claims() -> dict[tuple[Any, str], str] | None:
    """The currency claims, from this process's memory while the shared generation holds;
    None when they cannot be cached (no shared cache, or too many)."""
    global _claims  # noqa: PLW0603 - one cache per process, on purpose
    generation = key_cache.shared_generation()
    if generation is None:
        return None
    now = time.monotonic()
    cached = _claims
    if cached is not None and cached[0] == generation and cached[1] > now:
        return cached[2]
    # Read after the generation: a change committed meanwhile has moved it past this one.
    rows = list(
        MtnAccountCurrency.objects.values_list("tenant_id", "currency", "account__name")[
            : MAX_CACHED_CLAIMS + 1
        ]
    )
    if len(rows) > MAX_CACHED_CLAIMS:
        return None
    claims = {(tenant_id, currency): name for tenant_id, currency, name in rows}
    for tenant_id, _currency, name in rows:
        # A claim's tenant is its account's owner (mtn.models.MtnAccountCurrency).
        _owners.setdefault(name, tenant_id)
    with _lock:
        _claims = (generation, now + TTL_SECONDS, claims)
    return claims


def _account_changed(sender: Any, **kwargs: Any) -> None:
    forget_routes()
    key_cache.invalidate()


def ready() -> None:
    """Connect the signals that move the generation when an account or its currencies
    change, in every process (``mtn_account_set`` runs in its own). Called by the app."""
    for model in (MtnAccount, MtnAccountCurrency):
        name = model.__name__
        post_save.connect(_account_changed, sender=model, dispatch_uid=f"routing.save.{name}")
        post_delete.connect(_account_changed, sender=model, dispatch_uid=f"routing.delete.{name}")
