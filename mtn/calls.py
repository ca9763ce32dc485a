"""Work that talks to MTN, written once and run two ways: inline, or by the dispatcher.

A piece of work (a submission, a status poll, a callback's confirmation) is a generator: it
does its database work, then ``yield``s an :class:`MtnCall` (the one MTN request it needs,
which touches no database), and receives MTN's answer back (or the ``MtnError``, thrown in
at the ``yield``) to record it. So the same code runs

- inline (``run_inline``): a request thread with ``Prefer: wait``, the admin's re-check,
  tests; and
- in the dispatcher (``shell.worker``): the database parts on its main thread, each MTN call
  on a pool thread once the account's limits give it a permit, so that no database
  connection or transaction is held while MTN answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from mtn.accounts import mtn_client_for
from mtn.client import MtnClient
from mtn.errors import MtnError
from mtn.limits import (
    account_limits,
    permit_try_acquire,
    permit_wait_hint,
    slow_down_after,
)
from mtn.models import MtnAccount

R = TypeVar("R")


@dataclass
class MtnCall:
    """One request to MTN through ``account``: ``request(client)`` with that account's client
    in the calling thread (``client`` overrides it, for tests). No database access inside."""

    account: MtnAccount
    request: Callable[[MtnClient], Any]
    client: MtnClient | None = None
    quick: bool = False
    # Seconds: connect and read timeouts no longer than this (a request with ``Prefer: wait``).
    timeout_cap: float | None = None
    tenant_id: Any = field(default=None, compare=False)

    @property
    def account_name(self) -> str:
        return self.account.name

    def execute(self) -> Any:
        """Run the request in this thread; MTN's 429 slows the whole account down."""
        client = self.client
        if client is None:
            client = mtn_client_for(self.account, quick=self.quick, timeout_cap=self.timeout_cap)
        try:
            return self.request(client)
        except MtnError as exc:
            slow_down_after(self.account.name, exc)  # a 429 only
            raise


# The generator protocol: yields MtnCalls, is sent their results, returns its own result.
Job = Generator[MtnCall, Any, R]


def job_send(job: Job[R], outcome: Any) -> MtnCall | Done[R]:
    """Resume ``job`` with an MTN answer (or an ``MtnError`` to raise at its ``yield``);
    returns its next call, or ``Done`` with what it returned."""
    try:
        if isinstance(outcome, MtnError):
            return job.throw(outcome)
        return job.send(outcome)
    except StopIteration as stop:
        return Done(stop.value)


def job_start(job: Job[R]) -> MtnCall | Done[R]:
    return job_send(job, None)


@dataclass(frozen=True)
class Done(Generic[R]):
    value: R


def call_outcome(call: MtnCall) -> Any:
    """``call.execute()``'s answer, or the ``MtnError`` it raised (to be thrown in)."""
    try:
        return call.execute()
    except MtnError as exc:
        return exc


class PermitTimeout(Exception):
    """``run_inline`` gave up waiting for the account's permit before its deadline."""


def _permit(account: MtnAccount, deadline: float | None) -> Any:
    """A permit from ``account``'s limits, waiting for one; ``PermitTimeout`` rather than
    wait past ``deadline`` (``time.monotonic()``)."""
    limits = account_limits(account)
    while (permit := permit_try_acquire(account.name, limits)) is None:
        wait = permit_wait_hint(account.name, limits)
        if deadline is not None and time.monotonic() + wait > deadline:
            raise PermitTimeout(account.name)
        time.sleep(wait)
    return permit


def run_inline(job: Job[R], *, deadline: float | None = None) -> R:
    """Run ``job`` in this thread, each MTN call within its account's limits.

    ``deadline`` (``time.monotonic()``): raise ``PermitTimeout`` rather than wait for a
    permit past it; the job is then closed where it waited, before its call was made.
    """
    step = job_start(job)
    while not isinstance(step, Done):
        try:
            permit = _permit(step.account, deadline)
        except PermitTimeout:
            job.close()
            raise
        try:
            outcome = call_outcome(step)
        finally:
            permit.release()
        step = job_send(job, outcome)
    return step.value


def call_within_limits(account: MtnAccount, request: Callable[[], R], *, wait_up_to: float) -> R:
    """``request()`` (one call to MTN through ``account``, e.g. a payer look-up's) with a
    permit from the account's limits, waiting at most ``wait_up_to`` seconds for it
    (``PermitTimeout`` past that). MTN's 429 slows the account down."""
    permit = _permit(account, time.monotonic() + wait_up_to)
    try:
        return request()
    except MtnError as exc:
        slow_down_after(account.name, exc)
        raise
    finally:
        permit.release()
