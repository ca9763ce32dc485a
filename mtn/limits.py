"""STAND-IN for the ``limits`` branch's per-account MTN limits (deleted when it is merged).

Per process only; the real module shares the limits through Redis.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings


@dataclass(frozen=True)
class AccountLimits:
    max_in_flight: int
    rate_per_second: float


def account_limits(account: Any) -> AccountLimits:
    return AccountLimits(
        max_in_flight=int(getattr(settings, "MTN_MAX_IN_FLIGHT", 32)),
        rate_per_second=float(getattr(settings, "MTN_RATE_LIMIT", 50)),
    )


_lock = threading.Lock()
_in_flight: dict[str, int] = {}
_next_at: dict[str, float] = {}
_slow_until: dict[str, float] = {}


class Permit:
    def __init__(self, account_name: str) -> None:
        self.account_name = account_name
        self._released = False

    def release(self) -> None:
        with _lock:
            if not self._released:
                self._released = True
                _in_flight[self.account_name] -= 1


def permit_try_acquire(account_name: str, limits: AccountLimits) -> Permit | None:
    now = time.monotonic()
    with _lock:
        if _slow_until.get(account_name, 0.0) > now:
            return None
        if _in_flight.get(account_name, 0) >= limits.max_in_flight:
            return None
        interval = 1.0 / limits.rate_per_second
        next_at = max(_next_at.get(account_name, now), now - interval)
        if next_at > now:
            return None
        _next_at[account_name] = next_at + interval
        _in_flight[account_name] = _in_flight.get(account_name, 0) + 1
    return Permit(account_name)


def permit_wait_hint(account_name: str, limits: AccountLimits) -> float:
    now = time.monotonic()
    with _lock:
        wait = max(_slow_until.get(account_name, 0.0), _next_at.get(account_name, 0.0)) - now
    return min(max(wait, 0.005), 1.0)


def account_slow_down(account_name: str, seconds: float) -> None:
    with _lock:
        _slow_until[account_name] = time.monotonic() + seconds
