"""When the worker next looks at a payment: retry and polling delays. Pure."""

from __future__ import annotations

from datetime import timedelta

FIRST_DELAY = timedelta(seconds=5)
EARLY_PHASE = timedelta(minutes=10)
EARLY_CAP = timedelta(seconds=60)
LATE_CAP = timedelta(minutes=5)


def backoff_delay(attempt: int, age: timedelta) -> timedelta:
    """The delay before try number ``attempt + 1``, given how long we have been trying.

    5 s after the first failure, then doubling, at most 60 s apart during the first ten
    minutes and at most 5 minutes apart after that (the contract's worker schedule). No
    jitter: claims use ``SKIP LOCKED`` leases, so workers do not stampede on one row.
    """
    attempt = max(attempt, 1)
    delay = FIRST_DELAY * (2 ** min(attempt - 1, 16))
    cap = EARLY_CAP if age < EARLY_PHASE else LATE_CAP
    return min(delay, cap)
