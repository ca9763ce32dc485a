"""Retry policy for MTN calls: exponential backoff with full jitter, built on ``backoff``.

Only errors MTN marks transient (``MtnError.retryable``) are retried, and a wait MTN asked for
(``Retry-After`` on a 429) is honoured. The wrapped call is re-run unchanged, so a POST keeps
the same ``X-Reference-Id`` on every try: a try that landed earlier then answers 409, never a
second charge (reference sections 4.1 and 6.2).
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import backoff

from .errors import MtnError

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry one logical MTN call.

    ``sleep``, when given, replaces the real wait (tests record the delays instead of sleeping).
    """

    max_tries: int = 3
    max_seconds: float = 8.0
    base_delay: float = 0.5
    max_delay: float = 4.0
    # A Retry-After longer than this is capped to it (we still wait at least this long).
    max_retry_after: float = 30.0
    sleep: Callable[[float], None] | None = None
    rng: random.Random | None = None

    def should_retry(self, exc: MtnError) -> bool:
        return bool(exc.retryable)

    def run(self, func: Callable[[], T], *, description: str = "mtn call") -> T:
        """Call ``func`` until it succeeds, raises a non-retryable error, or the budget ends."""
        if self.max_tries <= 1:
            return func()
        return cast(T, self._runner(func, description))

    @functools.cached_property
    def _runner(self) -> Callable[[Callable[[], Any], str], Any]:
        # Decorated once per policy rather than once per call (backoff builds its handlers
        # and wrapper on every decoration); each run still gets its own wait generator.
        return cast(
            Callable[[Callable[[], Any], str], Any],
            backoff.on_exception(
                # backoff types wait generators as receiving None; ours receives the exception.
                cast(Any, self._wait_gen),
                MtnError,
                max_tries=self.max_tries,
                max_time=self.max_seconds,
                jitter=None,  # full jitter is applied in _wait_gen, after Retry-After is known
                giveup=lambda exc: not (isinstance(exc, MtnError) and self.should_retry(exc)),
                on_backoff=lambda details: _log_backoff(details["args"][1], details),
                raise_on_giveup=True,
                logger=None,
            )(_call),
        )

    def _wait_gen(self) -> Generator[float, MtnError, None]:
        """Wait generator: backoff sends the exception in, we answer with seconds to wait."""
        started = time.monotonic()
        rng = self.rng or random
        attempt = 0
        exc = yield 0.0  # primed by backoff with send(None)
        while True:
            ceiling = min(self.max_delay, self.base_delay * (2**attempt))
            delay = rng.uniform(0, ceiling)  # "full jitter" (AWS architecture blog)
            retry_after = getattr(exc, "retry_after", None)
            if retry_after is not None:
                wanted = min(float(retry_after), self.max_retry_after)
                remaining = self.max_seconds - (time.monotonic() - started)
                if wanted > remaining:
                    # Retrying before MTN's Retry-After is wasted; give up and let the caller
                    # (the worker) come back later.
                    return
                delay = max(delay, wanted)
            attempt += 1
            if self.sleep is not None:
                self.sleep(delay)
                exc = yield 0.0
            else:
                exc = yield delay


def _call(func: Callable[[], T], description: str) -> T:
    return func()  # ``description`` rides along for the log line (details["args"])


def _log_backoff(description: str, details: dict[str, Any]) -> None:
    exc = details.get("exception")
    logger.warning(
        "MTN %s failed (%s), retry %s in %.2fs",
        description,
        getattr(exc, "code", type(exc).__name__),
        details.get("tries"),
        details.get("wait", 0.0),
    )


def no_retry() -> RetryPolicy:
    """A policy of exactly one attempt."""
    return RetryPolicy(max_tries=1)
