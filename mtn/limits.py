"""Per-account limits on calls to MTN: at most ``max_in_flight`` at once and
``rate_per_second`` per second, over every process of the gateway.

A caller asks for a :class:`Permit` before each call to MTN and releases it when the answer
(or the failure) is in; :func:`permit_try_acquire` never blocks, so a dispatcher keeps its
other accounts moving while one waits (:func:`permit_wait_hint` says how long).

**With Redis** (``REDIS_URL``) one Lua script decides atomically, on Redis's own clock, per
account:

- in flight: a sorted set of permits scored by the moment their *lease* ends. A permit
  released is removed; a permit whose process died (SIGKILL, lost host) is dropped when its
  lease ends, so a slot is never lost for longer than the lease (by default longer than any
  MTN call with its retries can last: :func:`default_lease_seconds`);
- the rate: GCRA (the "virtual scheduling" form of a token bucket, one number per account:
  the theoretical arrival time of the next call). Calls are spaced ``1 / rate`` apart, with
  a burst of at most ``BURST_SECONDS`` worth of calls after a quiet spell, so that over any
  interval of ``t`` seconds at most ``burst + t × rate`` calls start;
- a slow-down: MTN's 429 ``Retry-After`` (:func:`account_slow_down`) stops that account, and
  only that one, until then.

A permit is granted only when all three agree, and only then does the rate advance: a call
refused for being over the in-flight cap spends nothing.

**Redis unreachable** (configured but down; ``gateway.cache.circuit`` keeps the process off
it for a few seconds after a failure): limits fail open to this process's *share*, enforced
in the process's memory. Every script run also records that this process uses the account
(a sorted set of processes scored by when they last asked, forgotten after
``PRESENCE_SECONDS``) and returns how many processes did; the share is the account's limits
divided by the last count this process saw, ``max(1, max_in_flight // n)`` calls at once and
``rate / n`` per second (``n`` is the largest count seen for any account when this one was
never seen, and 1 when Redis was never reached). Every decision taken so is counted in
``momo_rate_limit_fail_open_total{scope="mtn"}``. Permits given out during an outage are not
known to Redis when it is back: until they end, the cap may be exceeded by them.

**No Redis configured** (development, tests): the same limits, whole, in the process.

Exactness is per HTTP exchange only if each permit covers one: a call with the client's own
retries (``retry=True``) may send up to ``max_tries`` requests under one permit, and a call
that must mint a token sends one more.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django_redis import get_redis_connection  # type: ignore[import-untyped]
from django_redis.cache import RedisCache  # type: ignore[import-untyped]
from redis.commands.core import Script

from gateway import metrics
from gateway.cache import REDIS_ERRORS, circuit

from .errors import MtnRateLimitedError

# After a quiet spell an account may start this many seconds' worth of calls at once (at
# least one): slack for a dispatcher that wakes a little late, small against any window.
BURST_SECONDS = 0.1
# At the in-flight cap a slot frees when some call ends, which nobody can foresee: the wait
# hint is then a short poll interval.
IN_FLIGHT_POLL_SECONDS = 0.01
# A process counts towards an account's share for this long after its last permit request.
PRESENCE_SECONDS = 60.0
# MTN's 429 without a Retry-After (or with 0): hold the account this long.
DEFAULT_SLOW_DOWN_SECONDS = 1.0
METRIC_SCOPE = "mtn"

_MICRO = 1_000_000

# KEYS: in-flight set, rate state (TAT), slow-down, processes.
# ARGV: permit id, max in flight, interval µs, tolerance µs, lease µs, process id,
#       presence µs, poll µs, mode ("acquire" or "peek").
# Returns {granted (0/1), wait µs, processes, server time µs}.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cap = tonumber(ARGV[2])
local interval = tonumber(ARGV[3])
local tolerance = tonumber(ARGV[4])
local lease = tonumber(ARGV[5])
local presence = tonumber(ARGV[7])

redis.call('ZADD', KEYS[4], now, ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - presence)
redis.call('PEXPIRE', KEYS[4], math.ceil(presence / 1000))
local processes = redis.call('ZCARD', KEYS[4])

local wait = 0
local slow_until = tonumber(redis.call('GET', KEYS[3]) or '0')
if slow_until > now then wait = slow_until - now end

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= cap then
  wait = math.max(wait, tonumber(ARGV[8]))
end

local tat = tonumber(redis.call('GET', KEYS[2]) or '0')
if tat < now then tat = now end
if tat - tolerance > now then wait = math.max(wait, tat - tolerance - now) end

if wait > 0 or ARGV[9] ~= 'acquire' then
  return {0, wait, processes, now}
end
tat = tat + interval
redis.call('SET', KEYS[2], string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.ceil(lease / 1000) + 1000)
return {1, 0, processes, now}
"""

# KEYS: slow-down. ARGV: seconds in µs. Never shortens a longer slow-down already set.
_SLOW_DOWN = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local span = tonumber(ARGV[1])
local wanted = now + span
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if wanted > current then
  redis.call('SET', KEYS[1], string.format('%d', wanted), 'PX', math.ceil(span / 1000) + 1)
end
return 1
"""

# Bytes, so that no client is needed to hash them; each call names its client.
_acquire_script = Script(None, _ACQUIRE.encode())  # type: ignore[arg-type]
_slow_down_script = Script(None, _SLOW_DOWN.encode())  # type: ignore[arg-type]


@dataclass(frozen=True)
class AccountLimits:
    """How hard one MTN account may be called, over all processes."""

    max_in_flight: int  # MTN_MAX_IN_FLIGHT (default 32) unless the account row sets its own
    rate_per_second: float  # MTN_RATE_LIMIT (default 50) unless the account row sets its own

    def __post_init__(self) -> None:
        if int(self.max_in_flight) < 1:
            raise ValueError("max_in_flight must be at least 1")
        if not float(self.rate_per_second) > 0:
            raise ValueError("rate_per_second must be positive")

    @property
    def burst(self) -> int:
        """Calls that may start back to back after a quiet spell."""
        return max(1, int(self.rate_per_second * BURST_SECONDS))

    def share(self, processes: int) -> AccountLimits:
        """This process's part when ``processes`` share the account without Redis."""
        n = max(1, processes)
        return AccountLimits(max(1, self.max_in_flight // n), self.rate_per_second / n)


def account_limits(account: Any) -> AccountLimits:
    """The limits of ``account`` (an ``MtnAccount`` row, or the unsaved ``default`` that
    ``mtn.accounts.default_account`` builds): its own where set, else the settings'."""
    max_in_flight = getattr(account, "max_in_flight", None)
    rate = getattr(account, "rate_limit", None)
    return AccountLimits(
        max_in_flight=int(max_in_flight or settings.MTN_MAX_IN_FLIGHT),
        rate_per_second=float(rate or settings.MTN_RATE_LIMIT),
    )


def default_lease_seconds() -> float:
    """How long a permit holds its slot unless released: longer than one MTN call with the
    client's retries can last (every try's connect and read timeouts plus the retry budget),
    so that only a dead process's permit ever expires."""
    per_try = float(settings.MTN_CONNECT_TIMEOUT) + float(settings.MTN_READ_TIMEOUT)
    tries = max(1, int(settings.MTN_SUBMIT_MAX_TRIES))
    # +1 try: a token minted on the way is one more exchange.
    return float(settings.MTN_SUBMIT_MAX_SECONDS) + (tries + 1) * per_try + 5.0


class Permit:
    """One MTN call's slot. Release it when the call is over (also usable as a context
    manager); releasing twice is harmless."""

    __slots__ = ("_lock", "_released", "account_name", "granted_at", "permit_id", "shared")

    def __init__(self, account_name: str, permit_id: str, *, shared: bool, granted_at: float):
        self.account_name = account_name
        self.permit_id = permit_id
        self.shared = shared  # counted in Redis (False: in this process's memory)
        self.granted_at = granted_at  # seconds: Redis's clock when shared, else monotonic
        self._released = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        where = "redis" if self.shared else "process"
        return f"Permit({self.account_name!r}, {where}, released={self._released})"

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        if self.shared:
            _redis_release(self.account_name, self.permit_id)
        else:
            _local.release(self.account_name, self.permit_id)

    def __enter__(self) -> Permit:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def permit_try_acquire(
    account_name: str, limits: AccountLimits, *, lease_seconds: float | None = None
) -> Permit | None:
    """A permit for one call to ``account_name`` now, or None when the account is at its
    in-flight cap, over its rate this instant, or slowed down after a 429. Never blocks
    (one Redis round trip at most)."""
    lease = default_lease_seconds() if lease_seconds is None else float(lease_seconds)
    if _redis_configured():
        outcome = _redis_run(account_name, limits, lease=lease, acquire=True)
        if outcome is not None:
            granted, wait, permit = outcome
            if not granted:
                _refusals.remember(account_name, wait)
            return permit if granted else None
        metrics.rate_limit_failed_open(scope=METRIC_SCOPE)
        return _local.try_acquire(account_name, _process_share(account_name, limits), lease)
    return _local.try_acquire(account_name, limits, lease)


def permit_wait_hint(account_name: str, limits: AccountLimits) -> float:
    """Seconds until a permit for ``account_name`` is likely (0: now). At the in-flight cap
    this is a short poll interval: a slot frees whenever some call ends. Right after this
    thread was refused a permit for the account, the refusal's own wait is used (no second
    round trip to Redis)."""
    if _redis_configured():
        recent = _refusals.recall(account_name)
        if recent is not None:
            return recent
        outcome = _redis_run(account_name, limits, lease=0.0, acquire=False)
        if outcome is not None:
            return outcome[1]
        return _local.wait_hint(account_name, _process_share(account_name, limits))
    return _local.wait_hint(account_name, limits)


def account_slow_down(account_name: str, seconds: float) -> None:
    """MTN answered 429 with ``Retry-After: seconds``: no permit for this account (and only
    this one) until then, in every process. A shorter slow-down never cuts a longer one."""
    if not seconds > 0:
        return
    seconds = min(float(seconds), 3600.0)
    _local.slow_down(account_name, seconds)  # also holds this process if Redis fails later
    if not _redis_configured() or not circuit.allows():
        return
    try:
        connection = get_redis_connection("default")
        _slow_down_script(
            keys=[_key(account_name, "slow")],
            args=[int(seconds * _MICRO)],
            client=connection,
        )
    except REDIS_ERRORS as exc:
        circuit.failed(exc, use="mtn_limits")
        return
    circuit.succeeded()


def slow_down_after(account_name: str, error: BaseException) -> float:
    """If ``error`` is MTN's 429 (``MtnRateLimitedError``), slow ``account_name`` down for
    its ``Retry-After`` (``DEFAULT_SLOW_DOWN_SECONDS`` when MTN named no wait) and return
    the seconds; 0 for any other error, which changes nothing."""
    if not isinstance(error, MtnRateLimitedError):
        return 0.0
    seconds = error.retry_after if error.retry_after else DEFAULT_SLOW_DOWN_SECONDS
    account_slow_down(account_name, seconds)
    return float(seconds)


# --- Redis --------------------------------------------------------------------------------

# How long a refusal's wait stands in for a fresh wait hint (same thread and account).
REFUSAL_MEMORY_SECONDS = 0.005


class _Refusals(threading.local):
    """This thread's last refusal per account: (when, wait), for ``permit_wait_hint``."""

    def __init__(self) -> None:
        self.by_account: dict[str, tuple[float, float]] = {}

    def remember(self, account_name: str, wait: float) -> None:
        self.by_account[account_name] = (time.monotonic(), wait)

    def recall(self, account_name: str) -> float | None:
        found = self.by_account.pop(account_name, None)
        if found is None:
            return None
        elapsed = time.monotonic() - found[0]
        if elapsed > REFUSAL_MEMORY_SECONDS:
            return None
        return max(found[1] - elapsed, 0.0)


_refusals = _Refusals()


def _redis_configured() -> bool:
    return isinstance(caches["default"], RedisCache)


def _key(account_name: str, part: str) -> str:
    # The braces keep an account's keys in one Redis Cluster slot, as a script needs.
    return str(caches["default"].make_key(f"mtn:limits:{{{account_name}}}:{part}"))


def _redis_run(
    account_name: str, limits: AccountLimits, *, lease: float, acquire: bool
) -> tuple[bool, float, Permit | None] | None:
    """(granted, wait seconds, permit) from Redis, or None when Redis cannot be asked."""
    if not circuit.allows():
        return None
    interval = _MICRO / limits.rate_per_second
    permit_id = uuid.uuid4().hex if acquire else ""
    try:
        connection = get_redis_connection("default")
        granted, wait, processes, now = _acquire_script(
            keys=[
                _key(account_name, "inflight"),
                _key(account_name, "rate"),
                _key(account_name, "slow"),
                _key(account_name, "processes"),
            ],
            args=[
                permit_id,
                limits.max_in_flight,
                int(interval),
                int((limits.burst - 1) * interval),
                int(lease * _MICRO),
                _process_id(),
                int(PRESENCE_SECONDS * _MICRO),
                int(IN_FLIGHT_POLL_SECONDS * _MICRO),
                "acquire" if acquire else "peek",
            ],
            client=connection,
        )
    except REDIS_ERRORS as exc:
        circuit.failed(exc, use="mtn_limits")
        return None
    circuit.succeeded()
    _presence.seen(account_name, int(processes))
    permit = None
    if granted:
        permit = Permit(account_name, permit_id, shared=True, granted_at=int(now) / _MICRO)
    return bool(granted), int(wait) / _MICRO, permit


def _redis_release(account_name: str, permit_id: str) -> None:
    if not circuit.allows():
        return  # its lease ends it
    try:
        get_redis_connection("default").zrem(_key(account_name, "inflight"), permit_id)
    except REDIS_ERRORS as exc:
        circuit.failed(exc, use="mtn_limits")
        return
    circuit.succeeded()


_process_ids: dict[int, str] = {}


def _process_id() -> str:
    # Per process (a fork gets its own: the pid is part of the lookup).
    pid = os.getpid()
    found = _process_ids.get(pid)
    if found is None:
        found = _process_ids[pid] = f"{socket.gethostname()}:{pid}:{uuid.uuid4().hex[:8]}"
    return found


class _Presence:
    """How many processes shared each account the last time Redis said."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_account: dict[str, int] = {}
        self._most = 0

    def seen(self, account_name: str, processes: int) -> None:
        with self._lock:
            self._by_account[account_name] = processes
            self._most = max(self._most, processes)

    def count(self, account_name: str) -> int:
        with self._lock:
            return self._by_account.get(account_name) or self._most or 1

    def clear(self) -> None:
        with self._lock:
            self._by_account.clear()
            self._most = 0


_presence = _Presence()


def _process_share(account_name: str, limits: AccountLimits) -> AccountLimits:
    return limits.share(_presence.count(account_name))


# --- this process's memory (no Redis, or Redis down) --------------------------------------


@dataclass
class _AccountState:
    leases: dict[str, float] = field(default_factory=dict)  # permit id -> lease end
    tat: float = 0.0  # GCRA: theoretical arrival time of the next call
    slow_until: float = 0.0


def _clock() -> float:
    return time.monotonic()  # a function, so that tests can move time


class _LocalLimiter:
    """The same three checks in this process's memory, on ``time.monotonic``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accounts: dict[str, _AccountState] = {}

    def _state(self, account_name: str) -> _AccountState:
        state = self._accounts.get(account_name)
        if state is None:
            state = self._accounts[account_name] = _AccountState()
        return state

    def _wait(self, state: _AccountState, limits: AccountLimits, now: float) -> float:
        wait = max(0.0, state.slow_until - now)
        for permit_id, ends in list(state.leases.items()):
            if ends <= now:
                del state.leases[permit_id]
        if len(state.leases) >= limits.max_in_flight:
            wait = max(wait, IN_FLIGHT_POLL_SECONDS)
        interval = 1.0 / limits.rate_per_second
        allowed_at = max(state.tat, now) - (limits.burst - 1) * interval
        return max(wait, allowed_at - now)

    def try_acquire(self, account_name: str, limits: AccountLimits, lease: float) -> Permit | None:
        with self._lock:
            now = _clock()
            state = self._state(account_name)
            if self._wait(state, limits, now) > 0:
                return None
            state.tat = max(state.tat, now) + 1.0 / limits.rate_per_second
            permit_id = uuid.uuid4().hex
            state.leases[permit_id] = now + lease
        return Permit(account_name, permit_id, shared=False, granted_at=now)

    def wait_hint(self, account_name: str, limits: AccountLimits) -> float:
        with self._lock:
            return self._wait(self._state(account_name), limits, _clock())

    def release(self, account_name: str, permit_id: str) -> None:
        with self._lock:
            self._state(account_name).leases.pop(permit_id, None)

    def slow_down(self, account_name: str, seconds: float) -> None:
        with self._lock:
            state = self._state(account_name)
            state.slow_until = max(state.slow_until, _clock() + seconds)

    def clear(self) -> None:
        with self._lock:
            self._accounts.clear()


_local = _LocalLimiter()


def forget_local_state() -> None:
    """Drop this process's permits, rates, slow-downs and process counts (tests)."""
    _local.clear()
    _presence.clear()
    _refusals.by_account.clear()


__all__ = [
    "AccountLimits",
    "Permit",
    "account_limits",
    "account_slow_down",
    "default_lease_seconds",
    "permit_try_acquire",
    "permit_wait_hint",
    "slow_down_after",
]
