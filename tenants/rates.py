"""Rate limits: rate strings such as ``120/m``, and one counter check per request.

A limit is a fixed window per (scope, key, rate): ``N/m`` lets N requests through in each
window of a minute. Windows are staggered per key (as django-ratelimit does) so that every
key's counter does not reset at the same moment.

With Redis (``REDIS_URL``) the counter lives there, shared by every process, and one check
is one round trip: ``INCR`` and ``EXPIRE`` pipelined. ``INCR`` is atomic, so the limit is
exact however many processes count at once. When Redis cannot be reached the check fails
open: the request goes through, ``momo_rate_limit_fail_open_total`` counts it, and
``gateway.cache.circuit`` keeps this process off Redis for a few seconds (a warning line at
most once a minute). Without Redis the counter is the process's own cache (development).
"""

from __future__ import annotations

import re
import time
import zlib
from dataclasses import dataclass

from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.exceptions import ValidationError
from django_redis import get_redis_connection
from django_redis.cache import RedisCache

from gateway import metrics
from gateway.cache import REDIS_ERRORS, circuit

_RATE_RE = re.compile(r"^(\d+)/(\d*)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def validate_rate(value: str) -> None:
    if value and not _RATE_RE.match(value):
        raise ValidationError(f"{value!r} is not a rate like 120/m, 10/s or 5000/h.")


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: int


def parse_rate(value: str) -> Rate:
    """``"120/m"`` → 120 per 60 s; ``"10/5m"`` → 10 per 300 s. Raises ``ValueError``."""
    match = _RATE_RE.match(value.strip())
    if not match:
        raise ValueError(f"{value!r} is not a rate like 120/m, 10/s or 5000/h.")
    count, multiplier, unit = match.groups()
    # "10/0m" passes the pattern; read it as "10/m" rather than dividing by zero.
    return Rate(int(count), max(int(multiplier or 1), 1) * _UNIT_SECONDS[unit])


@dataclass(frozen=True)
class Usage:
    count: int  # requests counted in this window, this one included
    limit: int
    time_left: float  # seconds until the window ends

    @property
    def should_limit(self) -> bool:
        return self.count > self.limit


def rate_hit(*, scope: str, key: str, rate: str) -> Usage | None:
    """Count one request of ``key`` against ``rate``; None when it could not be counted.

    None means "let it through": Redis is unreachable (failing open, counted and logged).
    """
    parsed = parse_rate(rate)
    period = parsed.seconds
    now = time.time()
    # The stagger: each key's windows start at its own offset within the period.
    offset = zlib.crc32(f"{scope}:{key}".encode()) % period
    window_start = int((now - offset) // period) * period + offset
    time_left = window_start + period - now
    backend = caches["default"]
    counter = f"rl:{scope}:{parsed.count}/{period}:{key}:{window_start}"
    if isinstance(backend, RedisCache):
        count = _count_in_redis(backend.make_key(counter), ttl=period + 1, scope=scope)
        if count is None:
            return None
    else:
        count = _count_in_process(backend, counter, ttl=period + 1)
    return Usage(count=count, limit=parsed.count, time_left=time_left)


def _count_in_redis(counter: str, *, ttl: int, scope: str) -> int | None:
    if not circuit.allows():
        metrics.rate_limit_failed_open(scope=scope)
        return None
    try:
        pipe = get_redis_connection("default").pipeline(transaction=False)
        # The window is part of the key, so refreshing the expiry on every hit is harmless
        # (the key outlives its window by at most one period), and plain EXPIRE works on
        # every Redis version, unlike EXPIRE ... NX (7.0+).
        pipe.incr(counter)
        pipe.expire(counter, ttl)
        count, _ = pipe.execute()
    except REDIS_ERRORS as exc:
        circuit.failed(exc, use="rate_limit")
        metrics.rate_limit_failed_open(scope=scope)
        return None
    circuit.succeeded()
    return int(count)


def _count_in_process(backend: BaseCache, counter: str, *, ttl: int) -> int:
    # The per-process cache of the embedded default (no REDIS_URL): exact within a process.
    backend.add(counter, 0, timeout=ttl)
    try:
        return int(backend.incr(counter))
    except ValueError:  # expired between add and incr
        backend.set(counter, 1, timeout=ttl)
        return 1
