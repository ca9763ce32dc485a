"""Bounded shares of a process for requests that must wait on MTN (contract, Capacity).

A create with ``Prefer: wait``, a payer look-up and the admin's re-check each hold one slot
of their own share while they wait; past it they do not wait (the create answers at once,
the look-up answers 503 ``mtn_busy``, the re-check says so), so that MTN's latency never
takes every thread of a web process from reads and callbacks.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings

_lock = threading.Lock()
_shares: dict[str, tuple[int, threading.BoundedSemaphore]] = {}


def _semaphore(setting: str) -> threading.BoundedSemaphore:
    """The share sized by ``settings.<setting>``, made again if the setting changed."""
    size = max(int(getattr(settings, setting)), 0)
    with _lock:
        current = _shares.get(setting)
        if current is None or current[0] != size:
            current = _shares[setting] = (size, threading.BoundedSemaphore(max(size, 1)))
            if size == 0:
                current[1].acquire()  # a share of zero: never a free slot
        return current[1]


@contextmanager
def share_slot(setting: str) -> Iterator[bool]:
    """Hold one slot of the share sized by ``settings.<setting>`` if one is free: yields
    whether one was (never waits for one)."""
    semaphore = _semaphore(setting)
    if not semaphore.acquire(blocking=False):
        yield False
        return
    try:
        yield True
    finally:
        semaphore.release()
