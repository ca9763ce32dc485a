"""Idempotency keys: run a create once per (tenant, key), replay its answer afterwards.

The contract's rules, in order of a request's life:
1. ``Idempotency-Key`` is required (400 ``idempotency_key_missing``) and must be 1 to 255
   printable ASCII characters; one pair of surrounding quotes (the IETF draft's
   structured-field form) is accepted.
2. A key already claimed answers from its row: same fingerprint and completed → the stored
   status and body with ``Idempotent-Replayed: true``; different fingerprint → 422; still
   running → 409 for up to ``IDEMPOTENCY_LOCK_TIMEOUT_SECONDS``. After that the key is
   re-claimed: the object its request created is answered (201, current state), or the
   request runs afresh if it created nothing.
3. A new key: the request is validated first (a 400 stores nothing), then claimed with a
   unique row inserted in the same transaction as the object it creates; losing that race
   rolls the transaction back, and the request is answered from the winner's row.

This runs inside the create views rather than as a Django middleware because it must
come after DRF's authentication, rate limiting and validation: the contract says requests
rejected there store nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.response import Response

from gateway.errors import GatewayError, ValidationFailed, error_body
from gateway.models import IdempotencyKey
from gateway.sql import ModelColumns, fetch_rows

P = TypeVar("P")

REPLAY_HEADER = "Idempotent-Replayed"
_MAX_KEY_LENGTH = 255


class IdempotencyKeyMissing(GatewayError):
    code = "idempotency_key_missing"
    default_message = "This request creates something: send an Idempotency-Key header."


class IdempotencyKeyInUse(GatewayError):
    code = "idempotency_key_in_use"
    http_status = 409
    default_message = "A request with this Idempotency-Key is still being processed; retry later."


class IdempotencyKeyReused(GatewayError):
    code = "idempotency_key_reused"
    http_status = 422
    default_message = (
        "This Idempotency-Key was used earlier with a different request body: send this "
        "request with a new Idempotency-Key (or the earlier body, to get its answer again)."
    )


def read_idempotency_key(headers: Any) -> str:
    """The request's ``Idempotency-Key``, validated; raises a ``GatewayError`` otherwise."""
    raw = headers.get("Idempotency-Key")
    if raw is None or raw == "":
        raise IdempotencyKeyMissing()
    key = raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] == '"' else raw
    if not key or len(key) > _MAX_KEY_LENGTH or not all(" " <= ch <= "~" for ch in key):
        raise ValidationFailed(
            "Idempotency-Key must be 1 to 255 printable ASCII characters.",
            fields={"Idempotency-Key": ["Must be 1 to 255 printable ASCII characters."]},
        )
    return key


def request_fingerprint(*, method: str, path: str, data: Any) -> str:
    """A digest of method, path and the parsed JSON body (key order and spacing ignored)."""
    canonical = json.dumps(
        [method.upper(), path, data], sort_keys=True, separators=(",", ":"), ensure_ascii=True
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Executed:
    """What a create produced: the HTTP status and the JSON body to store and answer."""

    status: int
    body: dict[str, Any]
    stored: bool = False  # already stored on the key by ``idempotency_complete``
    # Sent with this answer only, never stored (e.g. ``Preference-Applied``): a replay did not
    # do what they describe.
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


def idempotency_complete(claim: Claim, executed: Executed) -> Executed:
    """Store the answer on the claimed key now, e.g. inside the transaction that records the
    outcome it describes. Returns it marked as stored, so that it is not stored twice."""
    _complete(claim, executed)
    return dataclasses.replace(executed, stored=True)


class IdempotencyKeyTaken(Exception):
    """Another request claimed this key between our look-up and our insert."""


@dataclass
class NewClaim:
    """A key not claimed yet: its row is inserted with the object its request creates.

    Inserting the key in the same transaction as the object (rather than claiming it
    first in a transaction of its own) saves a round of statements and a commit on every
    create, and keeps the guarantee: the unique (tenant, key) row decides which of two
    racing requests creates anything, and the loser's whole transaction rolls back.
    """

    tenant: Any
    key: str
    fingerprint: str
    expired_row_pk: int | None = None
    row: IdempotencyKey | None = None

    @property
    def resource_id(self) -> Any:
        return self.row.resource_id if self.row else None


Claim = NewClaim | IdempotencyKey


KEY_CONSTRAINT = "idempotency_key_unique_per_tenant"


def idempotency_new_row(
    claim: Claim | None, *, resource_type: str, resource_id: Any
) -> IdempotencyKey | None:
    """The row of a fresh key (nothing expired to replace), not saved yet.

    For a caller that inserts it in one statement with the object it creates
    (``gateway.sql.insert_together``); a violation of ``KEY_CONSTRAINT`` then means
    ``IdempotencyKeyTaken``, and ``claim.row`` must be set to the row once inserted. Every
    other claim gives None: use ``idempotency_link`` inside a transaction instead.
    """
    if not isinstance(claim, NewClaim) or claim.expired_row_pk is not None:
        return None
    now = timezone.now()
    return IdempotencyKey(
        tenant=claim.tenant,
        key=claim.key,
        fingerprint=claim.fingerprint,
        resource_type=resource_type,
        resource_id=resource_id,
        locked_at=now,
        expires_at=now + timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS),
    )


def idempotency_link(claim: Claim | None, *, resource_type: str, resource_id: Any) -> None:
    """Record the claimed key with the object its request creates.

    Call it inside the transaction that creates the object, so that a crash after that
    point leaves a key that leads a retry to the object instead of creating another. For a
    new key this inserts its row and raises ``IdempotencyKeyTaken`` if another request won
    the race (the caller's transaction then rolls back and nothing is created).
    """
    if claim is None:
        return
    if isinstance(claim, IdempotencyKey):
        IdempotencyKey.objects.filter(pk=claim.pk).update(
            resource_type=resource_type, resource_id=resource_id
        )
        claim.resource_type = resource_type
        claim.resource_id = resource_id
        return
    now = timezone.now()
    if claim.expired_row_pk is not None:
        # An expired key is treated as new; its row goes in the same transaction.
        IdempotencyKey.objects.filter(pk=claim.expired_row_pk, expires_at__lte=now).delete()
    try:
        claim.row = IdempotencyKey.objects.create(
            tenant=claim.tenant,
            key=claim.key,
            fingerprint=claim.fingerprint,
            resource_type=resource_type,
            resource_id=resource_id,
            locked_at=now,
            expires_at=now + timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS),
        )
    except IntegrityError as exc:
        raise IdempotencyKeyTaken() from exc


def run_idempotent(
    *,
    tenant: Any,
    key: str,
    fingerprint: str,
    prepare: Callable[[], P],
    execute: Callable[[P, Claim], Executed],
    recover: Callable[[IdempotencyKey], Executed | None],
) -> Response:
    """Run ``execute`` at most once for this tenant's key and answer as the contract says.

    ``prepare`` validates (its errors store nothing); ``execute`` does the work and must call
    ``idempotency_link`` in the transaction that creates the object; ``recover`` answers for
    a key whose request died after creating its object.
    """
    prepared: Any = _UNSET
    for _ in range(3):
        row = _find(tenant, key)
        claim: Claim
        if row is None or row.expires_at <= timezone.now():
            if prepared is _UNSET:
                prepared = prepare()
            claim = NewClaim(tenant, key, fingerprint, row.pk if row is not None else None)
        else:
            answer = _answer_existing(row, fingerprint, recover)
            if isinstance(answer, Response):
                return answer
            claim = answer
            if prepared is _UNSET:
                try:
                    prepared = prepare()
                except Exception:
                    claim.delete()
                    raise
        try:
            return _execute(claim, prepared, execute)
        except IdempotencyKeyTaken:
            continue  # another request claimed it a moment ago: answer from its row
    raise IdempotencyKeyInUse(headers={"Retry-After": "1"})


class _Unset:
    pass


_UNSET = _Unset()


_KEYS = ModelColumns(IdempotencyKey, "i")


def _find(tenant: Any, key: str) -> IdempotencyKey | None:
    """The tenant's row for ``key``, expired or not (hand-written SQL: every create runs it)."""
    rows = fetch_rows(
        f"SELECT {_KEYS.select} FROM {_KEYS.table} "  # noqa: S608 - column names only
        "WHERE i.tenant_id = %s AND i.key = %s",
        [_KEYS.param("tenant", tenant.pk), key],
    )
    return _KEYS.build(rows[0]) if rows else None


def _answer_existing(
    row: IdempotencyKey,
    fingerprint: str,
    recover: Callable[[IdempotencyKey], Executed | None],
) -> Response | IdempotencyKey:
    if row.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    if row.state == IdempotencyKey.State.COMPLETED:
        return _replay(row.response_status or 200, row.response_body or {})
    now = timezone.now()
    lock_timeout = timedelta(seconds=settings.IDEMPOTENCY_LOCK_TIMEOUT_SECONDS)
    if row.locked_at is not None and row.locked_at > now - lock_timeout:
        wait = (row.locked_at + lock_timeout - now).total_seconds()
        raise IdempotencyKeyInUse(headers={"Retry-After": str(max(1, int(wait) + 1))})
    # The request holding this key died. Re-claim it with a compare-and-set so that only one
    # retry takes over, then answer with what it created, or run afresh.
    taken = IdempotencyKey.objects.filter(
        pk=row.pk, state=IdempotencyKey.State.IN_PROGRESS, locked_at=row.locked_at
    ).update(locked_at=now)
    if not taken:
        raise IdempotencyKeyInUse(headers={"Retry-After": "1"})
    row.locked_at = now
    if row.resource_id is not None:
        recovered = recover(row)
        if recovered is not None:
            _complete(row, recovered)
            return _replay(recovered.status, recovered.body)
    return row


def _execute(claim: Claim, prepared: Any, execute: Callable[[Any, Claim], Executed]) -> Response:
    try:
        executed = execute(prepared, claim)
    except IdempotencyKeyTaken:
        raise
    except GatewayError as exc:
        # A definite answer from the work itself is stored and replayed like any other.
        executed = Executed(exc.http_status, error_body(exc.code, exc.message, exc.fields))
    except BaseException:
        _release(claim)
        raise
    if not executed.stored and not _complete(claim, executed):
        # A refusal decided while another request with this key ran (typically: against the
        # winner's own payout or refund). It is not this key's answer: answer the winner's
        # (409 while it runs, its stored answer after), never our own.
        raise IdempotencyKeyTaken()
    return Response(executed.body, status=executed.status, headers=executed.headers or None)


def _complete(claim: Claim, executed: Executed) -> bool:
    """Store ``executed`` as the key's answer. False when the key turned out to belong to
    another request (ours never inserted it): then nothing was stored."""
    done = {
        "state": IdempotencyKey.State.COMPLETED,
        "response_status": executed.status,
        "response_body": executed.body,
        "locked_at": None,
    }
    row = claim if isinstance(claim, IdempotencyKey) else claim.row
    if row is not None:
        IdempotencyKey.objects.filter(pk=row.pk).update(**done)
        return True
    # The work answered before creating anything (so before inserting the key): store it.
    assert isinstance(claim, NewClaim)  # noqa: S101 - narrowing for the type checker
    now = timezone.now()
    try:
        with transaction.atomic():
            if claim.expired_row_pk is not None:
                IdempotencyKey.objects.filter(pk=claim.expired_row_pk).delete()
            IdempotencyKey.objects.create(
                tenant=claim.tenant,
                key=claim.key,
                fingerprint=claim.fingerprint,
                expires_at=now + timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS),
                **done,
            )
    except IntegrityError:
        return False  # another request has the key now; its own answer will be stored
    return True


def _release(claim: Claim) -> None:
    """After an unexpected error: let a retry recover at once instead of waiting for the lock."""
    try:
        if isinstance(claim, IdempotencyKey) and claim.resource_id is None:
            IdempotencyKey.objects.filter(pk=claim.pk, resource_id__isnull=True).delete()
            return
        row = claim if isinstance(claim, IdempotencyKey) else claim.row
        if row is None:
            return  # nothing was claimed: the transaction that would have claimed rolled back
        expired_lock = timezone.now() - timedelta(
            seconds=settings.IDEMPOTENCY_LOCK_TIMEOUT_SECONDS + 1
        )
        IdempotencyKey.objects.filter(pk=row.pk).update(locked_at=expired_lock)
    except Exception:  # noqa: BLE001 - the original error matters more; the lock expires anyway
        return


def _replay(status: int, body: dict[str, Any]) -> Response:
    return Response(body, status=status, headers={REPLAY_HEADER: "true"})


def idempotency_keys_purge(*, now: Any = None, batch_size: int = 1000) -> int:
    """Delete expired keys in small batches; returns how many were deleted."""
    now = now or timezone.now()
    total = 0
    while True:
        ids = list(
            IdempotencyKey.objects.filter(expires_at__lte=now).values_list("pk", flat=True)[
                :batch_size
            ]
        )
        if not ids:
            return total
        total += IdempotencyKey.objects.filter(pk__in=ids).delete()[0]
