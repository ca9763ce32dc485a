"""Token caching for the MTN client: the shared cache (Redis in production), with this
process's memory behind it when the cache is down."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import cache

logger = logging.getLogger(__name__)

# Token refresh: MTN advises refreshing ~10 minutes before the 3600 s expiry (section 3.3).
TOKEN_REFRESH_MARGIN_SECONDS = 600
TOKEN_LOCK_WAIT_SECONDS = 5.0
# How long a process reuses a token without asking the shared cache. Far inside the refresh
# margin, so a remembered token is always still valid at MTN.
TOKEN_MEMO_SECONDS = 30.0


@dataclass(frozen=True)
class TokenMemo:
    token: str = field(repr=False)
    fresh_until: float  # use without asking the shared cache until then
    valid_until: float  # still valid at MTN until then (used when the cache is down)


# The shared cache is Redis in production. When it fails, tokens come from the process's
# memory instead of stopping payments; the warning is logged at most once a minute.
CACHE_WARNING_INTERVAL_SECONDS = 60.0
_cache_warning_lock = threading.Lock()
_cache_warned_at: float | None = None


def cache_failed(operation: str, exc: Exception) -> None:
    global _cache_warned_at
    now = time.monotonic()
    with _cache_warning_lock:
        if _cache_warned_at is not None and now - _cache_warned_at < CACHE_WARNING_INTERVAL_SECONDS:
            return
        _cache_warned_at = now
    logger.warning(
        "MTN token cache unavailable (%s failed: %s); using this process's tokens",
        operation,
        type(exc).__name__,
    )


# Each backend raises its own errors (redis.RedisError, django_redis's
# ConnectionInterrupted, OSError, pymemcache's...), hence the broad excepts below.
def cache_get(key: str) -> tuple[str | None, bool]:
    """(the string stored under ``key`` or None, whether the cache answered)."""
    try:
        value = cache.get(key)
    except Exception as exc:  # noqa: BLE001 - see above
        cache_failed("get", exc)
        return None, False
    return (value if isinstance(value, str) and value else None), True


def cache_add(key: str, value: str, *, timeout: int) -> bool | None:
    """True if added, False if the key existed, None if the cache failed."""
    try:
        return bool(cache.add(key, value, timeout=timeout))
    except Exception as exc:  # noqa: BLE001 - see above
        cache_failed("add", exc)
        return None


def cache_set(key: str, value: str, *, timeout: int) -> None:
    try:
        cache.set(key, value, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - see above
        cache_failed("set", exc)


def cache_delete(key: str) -> None:
    try:
        cache.delete(key)
    except Exception as exc:  # noqa: BLE001 - see above
        cache_failed("delete", exc)


def token_lifetime(expires_in: Any) -> float:
    """Seconds to cache a token: expiry minus ~10 min, but at least half of short lifetimes."""
    try:
        seconds = float(expires_in)
    except (TypeError, ValueError):
        seconds = 3600.0  # MTN documents 3600 everywhere (section 3.2)
    if seconds != seconds or seconds <= 0:
        return 0.0
    margin = min(TOKEN_REFRESH_MARGIN_SECONDS, seconds / 2)
    return max(seconds - margin, 0.0)
