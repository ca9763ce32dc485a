"""A short-lived, per-process cache of API-key lookups, dropped in every process on a change.

Authentication runs on every API request, and reading the key and its tenant from
PostgreSQL was a quarter of a retrieve's CPU (bench/RESULTS.md). Each web process keeps
what it read for ``TTL_SECONDS``, tagged with a *generation* that lives in the shared cache
(Redis in production). Revoking a key, or saving a tenant or a key, moves the generation
on, after the commit too: every process then finds its entries stale on its next request
and reads the database again. The generation is one small read per request, several
times cheaper than the SQL join it replaces.

What is safe by construction:
- An entry is stored under the generation read *before* the database was, so a change
  committed while a process was reading can never be cached under the newer generation.
- When the shared cache cannot be read (Redis down), nothing cached is used: every
  request reads the database, as without this module. Nor is anything cached where the
  cache is per process (no REDIS_URL): see ``in_use``. A generation that disappears (Redis
  restarted, the cache cleared) is replaced by a new random one, which no entry carries.
- Unknown keys are never cached: a guessed key costs a database read, as before, and
  cannot fill memory.

Only the revocation path, the tenant's and the key's ``save``/``delete`` move the
generation; a ``QuerySet.update`` of ``revoked_at`` or of a tenant's fields elsewhere must
call ``invalidate()`` itself. If moving it fails (Redis down at that moment) the change
reaches the other processes when their entries expire, within ``TTL_SECONDS``.

The cached ``ApiKey`` and ``Tenant`` objects are shared by the requests of one process:
treat ``request.user`` as read-only (authentication only refreshes ``last_used_at``).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from gateway.cache import circuit as redis_circuit
from tenants.models import ApiKey, Tenant

logger = logging.getLogger(__name__)

GENERATION_KEY = "tenants:api-key-cache:generation"
TTL_SECONDS = 30.0
MAX_ENTRIES = 4096
# After the shared cache failed, how long to go straight to the database before trying it
# again, so that a dead Redis costs at most one timeout per process and period.
RETRY_SHARED_AFTER_SECONDS = 2.0


@dataclass(frozen=True)
class _Entry:
    generation: int
    expires_at: float
    keys: tuple[ApiKey, ...]


# Keyed by (prefix, slug); slug None: a key sent alone (Authorization: Bearer), any tenant's.
_entries: dict[tuple[str, str | None], _Entry] = {}
_lock = threading.Lock()
_shared_down_until = 0.0


def _new_generation() -> int:
    # Random, not 0: a generation recreated after a Redis restart must differ from the one
    # the entries were stored under.
    return secrets.randbits(62)


def in_use() -> bool:
    """Whether lookups are cached: only where the generation is shared by every process.

    Without REDIS_URL (SQLite and the in-process cache, for trying the gateway out) a key
    revoked by ``manage.py revoke_api_key`` in another process could not reach the web
    process's entries, so nothing is cached there.
    """
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    return not backend.endswith(("LocMemCache", "DummyCache"))


def shared_generation() -> int | None:
    """The current generation, or None when the shared cache cannot be read."""
    global _shared_down_until  # noqa: PLW0603 - one flag per process, on purpose
    if not in_use() or time.monotonic() < _shared_down_until:
        return None
    try:
        generation = cache.get(GENERATION_KEY)
        if generation is None:
            cache.add(GENERATION_KEY, _new_generation(), timeout=None)
            generation = cache.get(GENERATION_KEY)
    except Exception:  # noqa: BLE001 - any cache failure means: do without the cache
        _shared_down_until = time.monotonic() + RETRY_SHARED_AFTER_SECONDS
        return None
    if redis_circuit.is_open:
        # Redis is down and the cache answered from this process's memory (gateway.cache):
        # that generation is not shared, so a revocation elsewhere would not reach it.
        return None
    return generation if isinstance(generation, int) else None


def lookup(*, prefix: str, slug: str | None, load: Callable[[], list[ApiKey]]) -> list[ApiKey]:
    """The active keys with this prefix of the tenant with this slug (``None``: of any
    tenant), from the cache or ``load``."""
    generation = shared_generation()
    if generation is None:
        return load()
    entry = _entries.get((prefix, slug))
    now = time.monotonic()
    if entry is not None and entry.generation == generation and entry.expires_at > now:
        return list(entry.keys)
    keys = load()
    if keys:
        with _lock:
            if len(_entries) >= MAX_ENTRIES:
                _entries.clear()
            _entries[(prefix, slug)] = _Entry(generation, now + TTL_SECONDS, tuple(keys))
    else:
        _entries.pop((prefix, slug), None)
    return keys


def _move_generation() -> None:
    with _lock:
        _entries.clear()
    try:
        cache.incr(GENERATION_KEY)
    except ValueError:
        pass  # no generation yet: the next reader creates a new one, which no entry carries
    except Exception:  # noqa: BLE001 - the change is committed; the cache must not undo it
        logger.warning(
            "could not move the API-key cache generation; other processes see the change "
            "within %s s",
            int(TTL_SECONDS),
            exc_info=True,
        )


def invalidate() -> None:
    """Drop every process's cached lookups: now, and again once the transaction commits.

    Now, so that this process (and a test inside one transaction) sees the change at once;
    after the commit, so that no process can have cached the old rows meanwhile.
    """
    _move_generation()
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(_move_generation)


def _changed(sender: Any, **kwargs: Any) -> None:
    invalidate()


# Suspending a tenant, changing its rate limit, revoking or adding a key: all are saves.
for _model in (Tenant, ApiKey):
    post_save.connect(_changed, sender=_model, dispatch_uid=f"key_cache.save.{_model.__name__}")
    post_delete.connect(_changed, sender=_model, dispatch_uid=f"key_cache.delete.{_model.__name__}")
