"""Rate limits for the callback doors, per client address (they carry no API key)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from gateway import metrics
from tenants.rates import rate_hit


class CallbackRateThrottle(BaseThrottle):
    """``CALLBACK_RATE_LIMIT`` per client address; fails open when Redis is unreachable."""

    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        usage = rate_hit(
            scope="callback",
            key=request.META.get("REMOTE_ADDR", "") or "unknown",
            rate=settings.CALLBACK_RATE_LIMIT,
        )
        if usage is None or not usage.should_limit:
            return True
        self._wait = max(usage.time_left, 1.0)
        metrics.rate_limited(scope="callback")
        return False

    def wait(self) -> float | None:
        return self._wait
