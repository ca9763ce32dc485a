"""Rate limits for the callback doors, per client address (they carry no API key)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django_ratelimit import ALL
from django_ratelimit.core import get_usage
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from gateway import metrics


def _client_address(group: str, request: Any) -> str:
    return request.META.get("REMOTE_ADDR", "") or "unknown"


class CallbackRateThrottle(BaseThrottle):
    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        usage = get_usage(
            request,
            group="mtn-callbacks",
            key=_client_address,
            rate=settings.CALLBACK_RATE_LIMIT,
            method=ALL,
            increment=True,
        )
        if usage is None or not usage["should_limit"]:
            return True
        self._wait = max(float(usage["time_left"]), 1.0)
        metrics.rate_limited(scope="callback")
        return False

    def wait(self) -> float | None:
        return self._wait
