"""The shared cache (Redis) and what happens when Redis cannot be reached.

Redis holds only what can be rebuilt: rate-limit counters and MTN access tokens. When it is
unreachable the gateway keeps answering:

- ``FailoverRedisCache`` (the ``default`` cache with ``REDIS_URL`` set) serves every cache
  call from this process's memory instead, so MTN tokens are kept per process until Redis
  is back, and a cache failure never becomes a 500;
- rate limits (``tenants.rates``) fail open: requests are let through, counted in
  ``momo_rate_limit_fail_open_total``.

A dead Redis costs one short timeout (``REDIS_TIMEOUT_SECONDS``) and then nothing: after a
failure this process's ``circuit`` stays open for ``RETRY_SECONDS``, during which no call
goes to Redis at all; then one caller probes it while the others keep using the fallback.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.core.cache.backends.locmem import LocMemCache
from django_redis.cache import RedisCache
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError

from gateway import metrics

logger = logging.getLogger("gateway.cache")

# Every way a Redis call can fail: refused, reset, timed out, name not resolved, read-only
# replica, out of memory. None of them may reach a merchant.
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, ConnectionInterrupted, OSError)
# How long a process leaves Redis alone after a failure before one caller tries it again.
RETRY_SECONDS = 5.0
# At most one warning line per process this often while Redis stays unreachable.
WARN_EVERY_SECONDS = 60.0


class Circuit:
    """A per-process circuit breaker for Redis: closed (use it), or open until a moment."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open_until: float | None = None
        self._warned_at: float | None = None
        self._on_close: list[Callable[[], None]] = []

    @property
    def is_open(self) -> bool:
        return self._open_until is not None

    def allows(self) -> bool:
        """Whether this call may go to Redis: always when closed; once per RETRY_SECONDS
        when open (that caller probes, the others keep away until it has answered)."""
        open_until = self._open_until
        if open_until is None:
            return True
        now = time.monotonic()
        if now < open_until:
            return False
        with self._lock:
            if self._open_until is None:
                return True
            if now >= self._open_until:
                self._open_until = now + RETRY_SECONDS
                return True
        return False

    def failed(self, exc: BaseException, *, use: str) -> None:
        """Redis failed ``use`` (``cache`` or ``rate_limit``): open, warn at most once a minute."""
        now = time.monotonic()
        with self._lock:
            self._open_until = now + RETRY_SECONDS
            warn = self._warned_at is None or now - self._warned_at >= WARN_EVERY_SECONDS
            if warn:
                self._warned_at = now
        if warn:
            logger.warning(
                "Redis cannot be reached (%s during %s: %s); rate limits fail open and the "
                "cache uses this process's memory until it is back",
                type(exc).__name__,
                use,
                exc,
                extra={"event": "redis.unavailable"},
            )

    def succeeded(self) -> None:
        if self._open_until is None:
            return
        with self._lock:
            if self._open_until is None:
                return
            self._open_until = None
            self._warned_at = None
            callbacks = list(self._on_close)
        logger.info("Redis is reachable again", extra={"event": "redis.available"})
        for callback in callbacks:
            callback()

    def on_close(self, callback: Callable[[], None]) -> None:
        with self._lock:
            self._on_close.append(callback)

    def reset(self) -> None:
        """Closed, nothing warned (tests)."""
        with self._lock:
            self._open_until = None
            self._warned_at = None


circuit = Circuit()


def _failover(name: str) -> Callable[..., Any]:
    redis_method = getattr(RedisCache, name)

    def method(self: FailoverRedisCache, *args: Any, **kwargs: Any) -> Any:
        if circuit.allows():
            try:
                result = redis_method(self, *args, **kwargs)
            except REDIS_ERRORS as exc:
                circuit.failed(exc, use="cache")
            else:
                circuit.succeeded()
                return result
        metrics.cache_fell_back()
        return getattr(self.fallback, name)(*args, **kwargs)

    method.__name__ = name
    method.__doc__ = f"``{name}`` on Redis, or on this process's memory while Redis is down."
    return method


class FailoverRedisCache(RedisCache):
    """django-redis's cache, served from this process's memory while Redis is unreachable.

    What is written during an outage stays in this process only (an MTN token minted then
    is used by this process alone); the memory is emptied when Redis answers again, so that
    nothing stale from one outage is served in the next.
    """

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        shared = ("TIMEOUT", "KEY_PREFIX", "VERSION", "KEY_FUNCTION")
        self.fallback = LocMemCache(
            f"redis-fallback-{id(self)}", {k: params[k] for k in shared if k in params}
        )
        circuit.on_close(self.fallback.clear)

    add = _failover("add")
    get = _failover("get")
    set = _failover("set")
    touch = _failover("touch")
    delete = _failover("delete")
    get_many = _failover("get_many")
    set_many = _failover("set_many")
    delete_many = _failover("delete_many")
    has_key = _failover("has_key")
    incr = _failover("incr")
    decr = _failover("decr")
    clear = _failover("clear")

    def close(self, **kwargs: Any) -> None:
        # Called after every request: never let it raise.
        try:
            super().close(**kwargs)
        except REDIS_ERRORS:
            return
