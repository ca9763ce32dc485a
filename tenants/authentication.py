"""``X-API-Key`` + ``X-Tenant-ID`` (or ``Authorization: Bearer``) authentication, the
tenant-active check and rate limits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from gateway import metrics
from gateway.audit import Actor
from gateway.errors import AuthenticationFailed, TenantSuspended
from gateway.request_context import bind_tenant
from gateway.sql import ModelColumns, fetch_rows
from tenants import key_cache
from tenants.keys import api_key_prefix, hash_api_key
from tenants.models import ApiKey, Tenant, slug_validator
from tenants.rates import rate_hit

# last_used_at is a support aid, not an audit record: refresh it at most this often so
# that authentication stays a single read on the hot path.
LAST_USED_RESOLUTION = timedelta(minutes=5)


@dataclass(frozen=True)
class TenantPrincipal:
    """What ``request.user`` is on the merchant API: the tenant and the key that called."""

    tenant: Tenant
    api_key: ApiKey

    is_authenticated = True

    @property
    def actor(self) -> Actor:
        return Actor.api_key(self.api_key.prefix)


_KEY = ModelColumns(ApiKey, "k")
_TENANT = ModelColumns(Tenant, "t")


def _active_keys(*, prefix: str, slug: str | None) -> list[ApiKey]:
    """Active keys with this prefix of the tenant with this slug (``None``: of any tenant,
    for a key sent alone as ``Authorization: Bearer``), each with its tenant.

    Hand-written SQL (gateway.sql): this runs on every API request.
    """
    sql = (
        f"SELECT {_KEY.select}, {_TENANT.select} FROM {_KEY.table} "  # noqa: S608 - columns only
        f"JOIN {_TENANT.table} ON t.id = k.tenant_id "
        "WHERE k.prefix = %s AND k.revoked_at IS NULL"
    )
    params = [prefix]
    if slug is not None:
        sql += " AND t.slug = %s"
        params.append(slug)
    keys = []
    for row in fetch_rows(sql, params):
        api_key = _KEY.build(row[: len(_KEY)])
        api_key.tenant = _TENANT.build(row[len(_KEY) :])
        keys.append(api_key)
    return keys


# What a 401 says. A missing header is named; any key that does not open this tenant (no such
# key, a revoked one, another tenant's) gets one and the same sentence, so that a stranger
# cannot learn which keys exist. An X-Tenant-ID that is no tenant's slug (a tenant's UUID or
# name, a typo) is said to be so, whatever the key: that tells nothing about keys, and it is
# the mistake people make.
MISSING_BOTH = (
    "The X-API-Key and X-Tenant-ID headers are missing; send your API key and your tenant's "
    "slug, or the API key alone as Authorization: Bearer <API key>."
)
MISSING_KEY = (
    "The X-API-Key header is missing; send your API key with X-Tenant-ID "
    "(or as Authorization: Bearer <API key>)."
)
MISSING_TENANT = "The X-Tenant-ID header is missing; send your tenant's slug with the API key."
NO_MATCH = (
    "The API key and the tenant in X-Tenant-ID do not match: the key is unknown or revoked "
    "for this tenant."
)
UNKNOWN_KEY = "The API key in Authorization: Bearer is unknown or revoked."
UNKNOWN_SLUG = (
    "X-Tenant-ID holds no tenant's slug: it takes the tenant's slug (lower-case letters, "
    "digits and hyphens, e.g. demo), not its id or its name."
)
NOT_BEARER = (
    "The Authorization header takes Bearer <API key>; or send the X-API-Key and X-Tenant-ID "
    "headers instead."
)
TWO_KEYS = "X-API-Key and Authorization: Bearer carry different keys; send one key."


def _missing_headers_message(*, raw_key: str, slug: str) -> str | None:
    if not raw_key and not slug:
        return MISSING_BOTH
    if not raw_key:
        return MISSING_KEY
    if not slug:
        return MISSING_TENANT
    return None


def _bearer_token(request: Request, *, raw_key: str) -> str | None:
    """The key of ``Authorization: Bearer <key>``, or None without a usable one.

    Another scheme (a proxy's Basic, say) is ignored when X-API-Key carries the key, and
    refused when nothing else does.
    """
    authorization = request.headers.get("Authorization", "")
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        if raw_key:
            return None
        raise AuthenticationFailed(NOT_BEARER)
    if raw_key and not constant_time_compare(raw_key, token):
        raise AuthenticationFailed(TWO_KEYS)
    return token


def _is_slug(slug: str) -> bool:
    try:
        slug_validator(slug)
    except ValidationError:
        return False
    return True


def _slug_exists(slug: str) -> bool:
    return _is_slug(slug) and Tenant.objects.filter(slug=slug).exists()


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[TenantPrincipal, ApiKey]:
        raw_key = request.headers.get("X-API-Key", "")
        slug = request.headers.get("X-Tenant-ID", "")
        bearer = _bearer_token(request, raw_key=raw_key)
        if bearer is None:
            missing = _missing_headers_message(raw_key=raw_key, slug=slug)
            if missing:
                raise AuthenticationFailed(missing)
        else:
            raw_key = bearer
        # With a bearer key and no X-Tenant-ID, the key names its tenant.
        tenant_slug = slug or None
        if tenant_slug is not None and not _is_slug(tenant_slug):
            # No tenant has such a slug (and PostgreSQL refuses a NUL in a query parameter:
            # it must never reach the key look-up). Said before any key is looked at.
            raise AuthenticationFailed(UNKNOWN_SLUG)
        refusal = NO_MATCH if tenant_slug is not None else UNKNOWN_KEY
        # PostgreSQL refuses NUL in a query parameter: a 500 unless refused here.
        if len(raw_key) <= 200 and "\x00" not in raw_key:
            key_hash = hash_api_key(raw_key)
            prefix = api_key_prefix(raw_key)
            keys = key_cache.lookup(
                prefix=prefix,
                slug=tenant_slug,
                load=lambda: _active_keys(prefix=prefix, slug=tenant_slug),
            )
            for api_key in keys:
                if constant_time_compare(api_key.key_hash, key_hash):
                    self._touch(api_key)
                    # The rest of the request's log lines name the tenant.
                    bind_tenant(api_key.tenant.slug)
                    return TenantPrincipal(tenant=api_key.tenant, api_key=api_key), api_key
        # Only now, on the way to a 401, so that the hot path stays one read (or none).
        if tenant_slug is not None and not _slug_exists(tenant_slug):
            raise AuthenticationFailed(UNKNOWN_SLUG)
        raise AuthenticationFailed(refusal)

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (not 403) for missing credentials.
        return "X-API-Key"

    @staticmethod
    def _touch(api_key: ApiKey) -> None:
        now = timezone.now()
        if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
            api_key.last_used_at = now


class IsTenantActive(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        principal = request.user
        if not isinstance(principal, TenantPrincipal):
            raise AuthenticationFailed()
        if not principal.tenant.is_active:
            raise TenantSuspended()
        return True


class ApiKeyRateThrottle(BaseThrottle):
    """Per-API-key rate limit (``tenants.rates``: one Redis round trip, fails open)."""

    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        if not isinstance(request.user, TenantPrincipal):
            return True
        principal = request.user
        usage = rate_hit(
            scope="api",
            key=str(principal.api_key.pk),
            rate=principal.tenant.rate_limit or settings.RATE_LIMIT_DEFAULT,
        )
        if usage is None or not usage.should_limit:
            return True
        self._wait = max(usage.time_left, 1.0)
        metrics.rate_limited(scope="api")
        return False

    def wait(self) -> float | None:
        return self._wait
