"""Throttle the admin login: per client address and per username, in the shared cache."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django_ratelimit.core import is_ratelimited

RETRY_AFTER_SECONDS = 60


def _username(group: str, request: HttpRequest) -> str:
    return request.POST.get("username", "")[:150].strip().lower() or "-"


def throttled(login_view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wrap the admin's login view so that password guessing is slowed to a crawl.

    Both counters move on every attempt (a guesser rotating usernames is caught by address,
    one spreading over addresses by username); a blocked attempt never reaches the check.
    """

    def login(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method == "POST":
            by_address = is_ratelimited(
                request,
                group="admin-login-address",
                key="ip",
                rate=settings.ADMIN_LOGIN_RATE_LIMIT,
                method="POST",
                increment=True,
            )
            by_username = is_ratelimited(
                request,
                group="admin-login-username",
                key=_username,
                rate=settings.ADMIN_LOGIN_RATE_LIMIT,
                method="POST",
                increment=True,
            )
            if by_address or by_username:
                response = HttpResponse(
                    "Too many login attempts. Wait a minute, then try again.",
                    status=429,
                    content_type="text/plain; charset=utf-8",
                )
                response["Retry-After"] = str(RETRY_AFTER_SECONDS)
                return response
        return login_view(request, *args, **kwargs)

    return login
