"""Writes for tenants and API keys. Every change is recorded in the audit trail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from gateway.audit import Actor, audit_record
from tenants import key_cache
from tenants.keys import (
    API_KEY_PREFIX_LENGTH,
    api_key_prefix,
    generate_api_key,
    generate_webhook_secret,
    hash_api_key,
)
from tenants.models import ApiKey, Tenant


class TenantError(Exception):
    """A tenant or key operation that cannot be done, with a message for the operator."""


@dataclass(frozen=True)
class IssuedApiKey:
    api_key: ApiKey
    raw_key: str  # shown once, never stored


def tenant_create(
    *,
    slug: str,
    name: str,
    webhook_url: str = "",
    rate_limit: str = "",
    collection_fee_percent: Decimal = Decimal(0),
    actor: Actor,
) -> tuple[Tenant, IssuedApiKey]:
    """Create a tenant with a fresh webhook secret and its first API key, atomically.

    Raises ``TenantError`` for an invalid field (a fee outside 0..100 or with more than two
    decimals among them) or a slug already taken; nothing is written.
    """
    tenant = Tenant(
        slug=slug,
        name=name,
        webhook_url=webhook_url,
        rate_limit=rate_limit,
        collection_fee_percent=collection_fee_percent,
        webhook_secret=generate_webhook_secret(),
    )
    try:
        tenant.full_clean()
    except ValidationError as exc:
        raise TenantError(_describe(exc)) from exc
    if not collection_fee_percent.is_finite():  # full_clean lets NaN through
        raise TenantError("collection_fee_percent: Must be a number from 0 to 100.")
    try:
        with transaction.atomic():
            tenant.save(force_insert=True)
            audit_record(
                tenant=tenant,
                object_type="tenant",
                object_id=tenant.pk,
                action="tenant.created",
                actor=actor,
                data={
                    "slug": slug,
                    "name": name,
                    "webhook_url": webhook_url,
                    # Recorded when set: the default (no fee) is implied by its absence.
                    **(
                        {"collection_fee_percent": str(collection_fee_percent)}
                        if collection_fee_percent
                        else {}
                    ),
                },
            )
            issued = api_key_create(tenant=tenant, actor=actor)
    except IntegrityError as exc:
        raise TenantError(f"A tenant with slug {slug!r} already exists.") from exc
    return tenant, issued


def api_key_create(*, tenant: Tenant, actor: Actor, name: str = "") -> IssuedApiKey:
    """Issue a new API key for ``tenant``; the raw key is returned once and never stored."""
    raw_key = generate_api_key()
    with transaction.atomic():
        api_key = ApiKey.objects.create(
            tenant=tenant, prefix=api_key_prefix(raw_key), key_hash=hash_api_key(raw_key), name=name
        )
        audit_record(
            tenant=tenant,
            object_type="api_key",
            object_id=api_key.pk,
            action="api_key.created",
            actor=actor,
            data={"prefix": api_key.prefix},
        )
    return IssuedApiKey(api_key=api_key, raw_key=raw_key)


def api_key_revoke(*, api_key: ApiKey, actor: Actor) -> ApiKey:
    """Revoke one key (idempotent: revoking a revoked key changes nothing)."""
    with transaction.atomic():
        locked = ApiKey.objects.select_for_update().get(pk=api_key.pk)
        if locked.revoked_at is not None:
            return locked
        locked.revoked_at = timezone.now()
        locked.save(update_fields=["revoked_at"])
        # Every web process drops its cached lookup of this key (explicit, not left to the
        # save signal: a revocation must never wait for a cache entry to expire).
        key_cache.invalidate()
        audit_record(
            tenant=locked.tenant,
            object_type="api_key",
            object_id=locked.pk,
            action="api_key.revoked",
            actor=actor,
            data={"prefix": locked.prefix},
        )
    return locked


def api_key_revoke_by_prefix(*, key_prefix: str, actor: Actor) -> ApiKey:
    """Revoke the one active key that begins with ``key_prefix``.

    Keys are known only by their stored 12-character prefix and hash, so anything longer
    than 12 characters must be the whole key. Raises ``TenantError``
    when no key or more than one active key matches; nothing is revoked then.
    """
    key_prefix = key_prefix.strip()
    if len(key_prefix) < 4:
        raise TenantError("Give at least the first 4 characters of the key (12 are enough).")
    active = ApiKey.objects.select_related("tenant").filter(revoked_at__isnull=True)
    if len(key_prefix) <= API_KEY_PREFIX_LENGTH:
        matches = list(active.filter(prefix__startswith=key_prefix))
    else:
        # Beyond the stored prefix only the whole key can be checked, against its hash.
        matches = [
            key
            for key in active.filter(prefix=api_key_prefix(key_prefix))
            if constant_time_compare(key.key_hash, hash_api_key(key_prefix))
        ]
    if not matches:
        raise TenantError(f"No active API key begins with {key_prefix!r}.")
    if len(matches) > 1:
        raise TenantError(
            f"{len(matches)} active API keys begin with {key_prefix!r}; give more characters."
        )
    return api_key_revoke(api_key=matches[0], actor=actor)


def tenant_update(
    *, tenant: Tenant, changes: dict[str, object], previous: dict[str, object], actor: Actor
) -> Tenant:
    """Save the given fields of ``tenant`` and record who changed what, in one transaction.

    Only the named fields are written, so a webhook secret rotated meanwhile is never
    overwritten by a stale copy. ``previous`` holds their values before the edit.
    """
    if not changes:
        return tenant
    for name, value in changes.items():
        setattr(tenant, name, value)
    with transaction.atomic():
        tenant.save(update_fields=[*changes, "updated_at"])
        audit_record(
            tenant=tenant,
            object_type="tenant",
            object_id=tenant.pk,
            action="tenant.updated",
            actor=actor,
            data={
                "fields": list(changes),
                "from": {name: _jsonable(previous.get(name)) for name in changes},
                "to": {name: _jsonable(value) for name, value in changes.items()},
            },
        )
    return tenant


def tenant_rotate_webhook_secret(
    *, tenant: Tenant, actor: Actor, grace: timedelta = timedelta(hours=24)
) -> Tenant:
    """Give the tenant a new webhook secret; the old one keeps signing during ``grace``."""
    with transaction.atomic():
        locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
        locked.previous_webhook_secret = locked.webhook_secret
        locked.previous_webhook_secret_expires_at = timezone.now() + grace
        locked.webhook_secret = generate_webhook_secret()
        locked.save(
            update_fields=[
                "previous_webhook_secret",
                "previous_webhook_secret_expires_at",
                "webhook_secret",
                "updated_at",
            ]
        )
        audit_record(
            tenant=locked,
            object_type="tenant",
            object_id=locked.pk,
            action="tenant.webhook_secret_rotated",
            actor=actor,
            data={"grace_seconds": int(grace.total_seconds())},
        )
    return locked


def _jsonable(value: object) -> object:
    """A field value as the audit trail's JSON can hold it (a fee percent is a Decimal)."""
    return str(value) if isinstance(value, Decimal) else value


def _describe(exc: ValidationError) -> str:
    if hasattr(exc, "message_dict"):
        return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
    return " ".join(exc.messages)
