"""MTN accounts: which account carries a tenant's money in a currency, and its client.

Routing follows the contract: the tenant's own account for the currency, else the platform's
account for the currency, else ``default`` (described by the ``MTN_*`` settings, not a row,
so that an existing deployment changes nothing). A client (and its HTTP connection pool and
token cache) is kept per thread and per account configuration.

This module reads the owning tenant only through the ``MtnAccount.tenant`` relation, so that
``mtn`` still imports nothing from the gateway's other apps.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.db.models import Q

from gateway.audit import Actor, audit_record

from .client import AccountCheck, MtnClient, MtnConfig, MtnCredentials, check_account, client_for
from .client import _clients as client_registry  # client_for's per-thread registry
from .models import (
    CREDENTIAL_FIELDS,
    DEFAULT_ACCOUNT,
    PRODUCTS,
    MtnAccount,
    MtnAccountCurrency,
    account_name_validator,
    currency_validator,
    target_environment_validator,
)

# X-Target-Environment values and their currencies (reference section 1.3). An account for a
# known market may only claim that market's currency: MTN refuses the others.
MARKET_CURRENCIES: dict[str, frozenset[str]] = {
    "sandbox": frozenset({"EUR"}),
    "mtnuganda": frozenset({"UGX"}),
    "mtnghana": frozenset({"GHS"}),
    "mtnivorycoast": frozenset({"XOF"}),
    "mtnzambia": frozenset({"ZMW"}),
    "mtncameroon": frozenset({"XAF"}),
    "mtnbenin": frozenset({"XOF"}),
    "mtncongo": frozenset({"XAF"}),
    "mtnswaziland": frozenset({"SZL"}),
    "mtnguineaconakry": frozenset({"GNF"}),
    "mtnsouthafrica": frozenset({"ZAR"}),
    "mtnliberia": frozenset({"LRD", "USD"}),
    "mtnrwanda": frozenset({"RWF"}),
    "mtnsouthsudan": frozenset({"SSP"}),
    "mtnnigeria": frozenset({"NGN"}),
}

# A host name only: no scheme, port, path or IP address (MTN refuses those, section 2.1).
_HOST_RE = re.compile(
    r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$"
)

# MTN's hosts (reference section 1.2), used when no base URL is given.
SANDBOX_BASE_URL = "https://sandbox.momodeveloper.mtn.com"
PRODUCTION_BASE_URLS = {"mtnrwanda": "https://proxy.momoapi.mtn.co.rw"}
PRODUCTION_BASE_URL = "https://proxy.momoapi.mtn.com"


class MtnAccountError(Exception):
    """An MTN account operation that cannot be done, with a message for the operator."""


class MtnAccountNotFound(MtnAccountError):
    """No MTN account has this name."""


@dataclass(frozen=True)
class RoutedAccount:
    """What a payment, payout or refund is sent through: record ``name`` on the object."""

    name: str
    account: MtnAccount
    client: MtnClient

    @property
    def is_tenant_owned(self) -> bool:
        return account_is_tenant_owned(self.account)

    @property
    def callback_base_url(self) -> str:
        return account_callback_base_url(self.account)


# --- reading accounts ---------------------------------------------------------------------


def default_account() -> MtnAccount:
    """The platform account ``default`` from the ``MTN_*`` settings (never saved)."""
    account = MtnAccount(
        name=DEFAULT_ACCOUNT,
        tenant=None,
        target_environment=settings.MTN_TARGET_ENVIRONMENT,
        base_url=settings.MTN_BASE_URL.rstrip("/"),
        callback_url=settings.MTN_CALLBACK_URL,
        collection_subscription_key=settings.MTN_COLLECTION_SUBSCRIPTION_KEY,
        collection_api_user=settings.MTN_COLLECTION_API_USER,
        collection_api_key=settings.MTN_COLLECTION_API_KEY,
        disbursement_subscription_key=settings.MTN_DISBURSEMENT_SUBSCRIPTION_KEY,
        disbursement_api_user=settings.MTN_DISBURSEMENT_API_USER,
        disbursement_api_key=settings.MTN_DISBURSEMENT_API_KEY,
    )
    account._currencies = ()  # type: ignore[attr-defined]  # it carries what no other claims
    return account


def mtn_account_get(*, name: str) -> MtnAccount:
    """The account called ``name`` (``default`` included). Raises ``MtnAccountNotFound``."""
    if name == DEFAULT_ACCOUNT:
        return default_account()
    account = MtnAccount.objects.select_related("tenant").filter(name=name).first()
    if account is None:
        raise MtnAccountNotFound(f"There is no MTN account named {name!r}.")
    return account


def mtn_account_route(*, tenant_id: Any, currency: str) -> MtnAccount:
    """The account that carries ``tenant_id``'s money in ``currency`` (one query).

    In the contract's order: the tenant's own account for the currency, the platform's account
    for the currency, ``default``.
    """
    claims = list(
        MtnAccountCurrency.objects.filter(currency=currency)
        .filter(Q(tenant_id=tenant_id) | Q(tenant__isnull=True))
        .select_related("account")
    )
    own = [claim for claim in claims if claim.tenant_id is not None]
    platform = [claim for claim in claims if claim.tenant_id is None]
    # At most one of each: the database allows one account per owner and currency.
    for claim in own or platform:
        return claim.account
    return default_account()


def account_is_tenant_owned(account: MtnAccount) -> bool:
    """Money through a tenant's own account never enters the ledger (no balance to check)."""
    return account.tenant_id is not None


def account_callback_base_url(account: MtnAccount) -> str:
    """The public base URL MTN calls back for this account ('' = no X-Callback-Url)."""
    return (account.callback_url or "").rstrip("/")


# --- clients ------------------------------------------------------------------------------


def mtn_config_for(
    account: MtnAccount, *, quick: bool = False, timeout_cap: float | None = None
) -> MtnConfig:
    """The client configuration of ``account`` (decrypts its credentials).

    ``quick`` gives short timeouts, for calls made while MTN waits on our answer to its
    callback (it gives up after about 2 seconds); ``timeout_cap`` caps both timeouts (a
    request that waits at most that long for MTN).
    """
    if account.is_default:
        config = MtnConfig.from_settings()
    else:
        config = MtnConfig.for_account(
            account=account.name,
            base_url=account.base_url,
            target_environment=account.target_environment,
            collection=_credentials(account, "collection"),
            disbursement=_credentials(account, "disbursement"),
        )
    if quick:
        config = dataclasses.replace(config, connect_timeout=1.0, read_timeout=1.5)
    if timeout_cap is not None:
        config = dataclasses.replace(
            config,
            connect_timeout=min(config.connect_timeout, timeout_cap),
            read_timeout=min(config.read_timeout, timeout_cap),
        )
    return config


def mtn_client_for(
    account: MtnAccount, *, quick: bool = False, timeout_cap: float | None = None
) -> MtnClient:
    """One MTN client (connection pool, token memo) per thread and account configuration.

    New credentials make a new configuration, hence a new client, in every process at once.
    """
    return client_for(mtn_config_for(account, quick=quick, timeout_cap=timeout_cap))


def mtn_route(*, tenant_id: Any, currency: str, quick: bool = False) -> RoutedAccount:
    """The account for a new payment, payout or refund in ``currency``, with its client."""
    account = mtn_account_route(tenant_id=tenant_id, currency=currency)
    return RoutedAccount(
        name=account.name, account=account, client=mtn_client_for(account, quick=quick)
    )


def mtn_client_named(name: str, *, quick: bool = False) -> MtnClient:
    """The client of the account recorded on an object (status polls, callbacks, refunds)."""
    return mtn_client_for(mtn_account_get(name=name), quick=quick)


def forget_clients() -> None:
    """Drop this thread's clients (tests)."""
    client_registry.__dict__.pop("by_config", None)


def _credentials(account: MtnAccount, product: str) -> MtnCredentials | None:
    if not account.has_product(product):
        return None
    values = {part: getattr(account, f"{product}_{part}") for part in CREDENTIAL_FIELDS}
    return MtnCredentials(**values)


# --- writing accounts ---------------------------------------------------------------------


def parse_credentials(data: Any) -> dict[str, dict[str, str]]:
    """``{"collection": {...}, "disbursement": {...}}`` checked; a product may be left out.

    Raises ``MtnAccountError`` naming what is wrong, never quoting a value.
    """
    if not isinstance(data, Mapping):
        raise MtnAccountError(
            'Credentials must be one JSON object: {"collection": {"subscription_key", '
            '"api_user", "api_key"}, "disbursement": {...}}.'
        )
    unknown = sorted(set(data) - set(PRODUCTS))
    if unknown:
        raise MtnAccountError(
            f"Unknown product(s) in the credentials: {', '.join(map(repr, unknown))}; "
            "use collection and disbursement."
        )
    parsed: dict[str, dict[str, str]] = {}
    for product, values in data.items():
        if not isinstance(values, Mapping):
            raise MtnAccountError(f"Credentials for {product} must be a JSON object.")
        missing = [part for part in CREDENTIAL_FIELDS if part not in values]
        extra = sorted(set(values) - set(CREDENTIAL_FIELDS))
        if missing or extra:
            raise MtnAccountError(
                f"Credentials for {product} need exactly subscription_key, api_user and api_key"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unknown {', '.join(map(repr, extra))}" if extra else "")
                + "."
            )
        for part in CREDENTIAL_FIELDS:
            value = values[part]
            if not isinstance(value, str) or not value.strip() or value != value.strip():
                raise MtnAccountError(
                    f"{product}.{part} must be a non-empty string without surrounding spaces."
                )
        try:
            uuid.UUID(values["api_user"])
        except ValueError as exc:
            # MTN's API users are UUIDs (reference section 2); a typo here fails every token.
            raise MtnAccountError(f"{product}.api_user must be a UUID.") from exc
        parsed[product] = {part: values[part] for part in CREDENTIAL_FIELDS}
    return parsed


def default_base_url(target_environment: str) -> str:
    if target_environment == "sandbox":
        return SANDBOX_BASE_URL
    return PRODUCTION_BASE_URLS.get(target_environment, PRODUCTION_BASE_URL)


def check_url(value: str, what: str) -> str:
    value = value.strip().rstrip("/")
    try:
        URLValidator(schemes=["http", "https"])(value)
    except ValidationError as exc:
        raise MtnAccountError(f"{what} must be an http(s) URL.") from exc
    parts = urlsplit(value)
    if parts.scheme != "https" and not _is_loopback(parts.hostname or ""):
        # MTN is only ever spoken to over verified TLS; plain http is for the local simulator.
        raise MtnAccountError(f"{what} must use https (http only for 127.0.0.1 or localhost).")
    return value


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check(validator: Any, value: str, what: str) -> None:
    try:
        validator(value)
    except ValidationError as exc:
        raise MtnAccountError(f"{what} {value[:70]!r} is not valid. {exc.messages[0]}") from exc


def check_callback_host(host: str) -> str:
    """``host`` as MTN's providerCallbackHost accepts it; ``ValueError`` says why not."""
    value = host.strip().lower()
    try:
        ipaddress.ip_address(value)
    except ValueError:
        pass
    else:
        raise ValueError("The callback host must be a host name, not an IP address.")
    if not _HOST_RE.match(value):
        raise ValueError(
            "The callback host must be a host name only, such as pay.example.com: no scheme, "
            "port or path."
        )
    return value


def check_account_name(name: str) -> None:
    """Raises ``MtnAccountError`` for a malformed name or ``default`` (the settings' account)."""
    _check(account_name_validator, name, "Account name")
    if name == DEFAULT_ACCOUNT:
        raise MtnAccountError(
            "The account 'default' is described by the MTN_* settings; give this account "
            "another name."
        )


# mtn_account_validate's max_in_flight and rate_limit: leave what is stored as it is.
KEEP: Any = type("Keep", (), {"__repr__": lambda self: "KEEP"})()
MAX_IN_FLIGHT_CEILING = 10_000
RATE_LIMIT_CEILING = 100_000.0


def check_max_in_flight(value: Any) -> int | None:
    """A per-account MTN_MAX_IN_FLIGHT: a whole number from 1, or None (the setting)."""
    if value is None:
        return None
    try:
        number = int(str(value).strip())
    except ValueError as exc:
        raise MtnAccountError(
            f"Max in flight must be a whole number from 1 to {MAX_IN_FLIGHT_CEILING}."
        ) from exc
    if not 1 <= number <= MAX_IN_FLIGHT_CEILING:
        raise MtnAccountError(
            f"Max in flight must be a whole number from 1 to {MAX_IN_FLIGHT_CEILING}."
        )
    return number


def check_rate_limit(value: Any) -> float | None:
    """A per-account MTN_RATE_LIMIT in calls per second: above 0, or None (the setting)."""
    if value is None:
        return None
    try:
        number = float(str(value).strip())
    except ValueError as exc:
        raise MtnAccountError(
            f"The rate limit must be a number of calls per second, from 0.01 to "
            f"{RATE_LIMIT_CEILING:g}."
        ) from exc
    if not 0.01 <= number <= RATE_LIMIT_CEILING:  # also refuses NaN
        raise MtnAccountError(
            f"The rate limit must be a number of calls per second, from 0.01 to "
            f"{RATE_LIMIT_CEILING:g}."
        )
    return number


@dataclass(frozen=True)
class AccountInput:
    """An account's settings, checked: what ``mtn_account_set`` writes."""

    name: str
    target_environment: str
    currencies: tuple[str, ...]
    credentials: dict[str, dict[str, str]]
    base_url: str | None
    callback_url: str | None  # None: keep; "": none
    tenant: Any  # the owning Tenant or None (the platform)
    max_in_flight: Any = KEEP  # KEEP, None (the setting) or a number
    rate_limit: Any = KEEP


def mtn_account_validate(
    *,
    name: str,
    target_environment: str,
    currencies: Iterable[str],
    credentials: Any,
    base_url: str | None = None,
    tenant_slug: str | None = None,
    callback_url: str | None = None,
    force: bool = False,
    max_in_flight: Any = KEEP,
    rate_limit: Any = KEEP,
) -> AccountInput:
    """Check everything ``mtn_account_set`` takes; raises ``MtnAccountError`` saying what.

    On an existing account ``tenant_slug`` None keeps its owner, and another owner is refused:
    the payments recorded on an account depend on whose it is. A currency that another account
    of the same owner carries is refused here (and by the database, whatever races). A target
    environment that is not one of MTN's is refused unless ``force``. A new base URL needs
    the credentials of every product the account has, in the same change.
    ``max_in_flight`` and ``rate_limit`` are the account's own MTN call limits: ``KEEP``
    leaves what is stored, None falls back to the settings.
    """
    check_account_name(name)
    _check(target_environment_validator, target_environment, "Target environment")
    if target_environment not in MARKET_CURRENCIES and not force:
        # A typo (uganda for mtnuganda) would otherwise fail every call to MTN, later.
        raise MtnAccountError(
            f"Target environment {target_environment!r} is not one of MTN's: "
            f"{', '.join(MARKET_CURRENCIES)}. (--force stores it anyway, for a market MTN "
            "opened since.)"
        )
    wanted = tuple(sorted(set(currencies)))
    if not wanted:
        raise MtnAccountError("Give at least one currency (--currency UGX).")
    for currency in wanted:
        _check(currency_validator, currency, "Currency")
    allowed = MARKET_CURRENCIES.get(target_environment)
    if allowed is not None and not set(wanted) <= allowed:
        raise MtnAccountError(
            f"Target environment {target_environment} carries only "
            f"{', '.join(sorted(allowed))}; MTN refuses {', '.join(sorted(set(wanted) - allowed))}"
            " there."
        )
    parsed = parse_credentials(credentials)
    checked_max_in_flight = (
        max_in_flight if max_in_flight is KEEP else check_max_in_flight(max_in_flight)
    )
    checked_rate_limit = rate_limit if rate_limit is KEEP else check_rate_limit(rate_limit)
    checked_base_url = check_url(base_url, "The base URL") if base_url else None
    checked_callback = None
    if callback_url is not None:
        checked_callback = check_url(callback_url, "The callback URL") if callback_url else ""

    existing = MtnAccount.objects.select_related("tenant").filter(name=name).first()
    tenant_model = MtnAccount._meta.get_field("tenant").related_model
    tenant = existing.tenant if existing else None
    if tenant_slug:
        tenant = tenant_model.objects.filter(slug=tenant_slug).first()  # type: ignore[union-attr]
        if tenant is None:
            raise MtnAccountError(f"There is no tenant {tenant_slug!r}.")
        if existing is not None and existing.tenant_id != tenant.pk:
            raise MtnAccountError(
                f"Account {name} belongs to {_owner(existing.tenant)}; an account's owner never "
                "changes (its payments depend on it). Create another account."
            )
    if existing is None and not parsed:
        raise MtnAccountError("A new account needs the credentials of at least one product.")
    if existing is not None:
        refuse_credentials_to_new_host(existing, checked_base_url, parsed)
    taken = (
        MtnAccountCurrency.objects.filter(currency__in=wanted, tenant=tenant)
        .exclude(account__name=name)
        .select_related("account")
        .order_by("currency")
        .first()
    )
    if taken is not None:
        raise MtnAccountError(_currency_taken(tenant, taken.currency, taken.account.name))
    return AccountInput(
        name=name,
        target_environment=target_environment,
        currencies=wanted,
        credentials=parsed,
        base_url=checked_base_url,
        callback_url=checked_callback,
        tenant=tenant,
        max_in_flight=checked_max_in_flight,
        rate_limit=checked_rate_limit,
    )


def stored_products(account: MtnAccount) -> list[str]:
    """The products whose credentials ``account`` stores, judged without decrypting them."""
    return [
        product
        for product in PRODUCTS
        if any(account.__dict__.get(f"{product}_{part}") for part in CREDENTIAL_FIELDS)
    ]


def refuse_credentials_to_new_host(
    account: MtnAccount, base_url: str | None, credentials: Mapping[str, Any]
) -> None:
    """Raise ``MtnAccountError`` when ``base_url`` moves ``account`` to another host while
    credentials stored for the old one would stay.

    Otherwise whoever can change the URL could point it at their own host, press "Check with
    MTN" and read the stored API key and subscription key off the requests: credentials are
    write-only, so a new host needs them given again, in the same change.
    """
    if not base_url or base_url == account.base_url:
        return
    kept = [product for product in stored_products(account) if product not in credentials]
    if kept:
        raise MtnAccountError(
            f"The base URL changes from {account.base_url} to {base_url}: give the "
            f"{' and '.join(kept)} credentials again in the same change. Credentials stored "
            "for one host are never sent to another."
        )


def _owner(tenant: Any) -> str:
    return f"tenant {tenant.slug}" if tenant is not None else "the platform"


def _currency_taken(tenant: Any, currency: str, other: str | None) -> str:
    holder = f"account {other}" if other else "another account"
    return (
        f"{currency} is already carried by {holder} of {_owner(tenant)}; an owner has one "
        "account per currency."
    )


def mtn_account_set(*, actor: Actor, **values: Any) -> MtnAccount:
    """Create or update an account: its settings, currencies and the credentials given.

    Takes ``mtn_account_validate``'s arguments. A product left out of ``credentials`` keeps
    what it had (nothing, for a new account); the currencies given replace the account's.
    Atomic: on any error (``MtnAccountError``) nothing is stored. Audited without any
    credential. Locks the account's row while it writes.
    """
    given = mtn_account_validate(**values)
    tenant = given.tenant
    try:
        with transaction.atomic():
            account = MtnAccount.objects.select_for_update().filter(name=given.name).first()
            created = account is None
            if account is None:
                account = MtnAccount(name=given.name, tenant=tenant)
            elif account.tenant_id != (tenant.pk if tenant else None):
                raise MtnAccountError(
                    f"Account {given.name} changed owner meanwhile; nothing was stored."
                )
            else:
                # Again on the locked row: the URL may have changed since the validation read.
                refuse_credentials_to_new_host(account, given.base_url, given.credentials)
            account.target_environment = given.target_environment
            if given.base_url:
                account.base_url = given.base_url
            elif created:
                account.base_url = default_base_url(given.target_environment)
            if given.callback_url is not None:
                account.callback_url = given.callback_url
            if given.max_in_flight is not KEEP:
                account.max_in_flight = given.max_in_flight
            if given.rate_limit is not KEEP:
                account.rate_limit = given.rate_limit
            for product, parts in given.credentials.items():
                for part, value in parts.items():
                    setattr(account, f"{product}_{part}", value)
            account.save()
            account.currency_claims.all().delete()
            MtnAccountCurrency.objects.bulk_create(
                MtnAccountCurrency(account=account, tenant=tenant, currency=currency)
                for currency in given.currencies
            )
            audit_record(
                tenant=tenant,
                object_type="mtn_account",
                object_id=account.pk,
                action="mtn_account.created" if created else "mtn_account.updated",
                actor=actor,
                data={
                    "name": given.name,
                    "target_environment": given.target_environment,
                    "base_url": account.base_url,
                    "currencies": list(given.currencies),
                    "callback_url": account.callback_url,
                    "max_in_flight": account.max_in_flight,
                    "rate_limit": account.rate_limit,
                    # Which credentials were set, never their values.
                    "credentials_set": sorted(given.credentials),
                },
            )
    except IntegrityError as exc:
        raise MtnAccountError(_currency_taken(tenant, "/".join(given.currencies), None)) from exc
    account._currencies = given.currencies  # type: ignore[attr-defined]
    forget_clients()
    return account


def account_output(account: MtnAccount) -> dict[str, Any]:
    """What ``mtn_account_set`` prints: never a credential."""
    return {
        "account": account.name,
        "tenant": account.tenant.slug if account.tenant is not None else None,
        "target_environment": account.target_environment,
        "currencies": account.currency_list(),
    }


# --- checking an account with MTN ---------------------------------------------------------


def mtn_account_check(account: MtnAccount) -> AccountCheck:
    """Ask MTN for a fresh token per product the account has, then for its balance.

    Retries nothing and never raises for MTN's refusals: the result says in words which
    credential or setting MTN refused. Never shows a credential.
    """
    return check_account(mtn_config_for(account), client=mtn_client_for(account))
