"""Throttle the admin sign-in: failures per (username, client address) and per address.

Only failed passwords count, and only against where they came from: a guesser is slowed to
``ADMIN_LOGIN_RATE_LIMIT`` tries at one username and ``ADMIN_LOGIN_ADDRESS_RATE_LIMIT`` at
all usernames, per address and window, but a right password from an address that has not
failed is never refused for failures elsewhere (counting per username would let anyone lock
a chosen staff member out, and counting per proxy address would lock everyone out at once).
The client address is the one behind trusted proxies (``gateway.forwarded``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django_ratelimit.core import get_usage

from gateway.forwarded import client_address

RETRY_AFTER_SECONDS = 60
_BY_PAIR = "admin-login-failures-username-address"
_BY_ADDRESS = "admin-login-failures-address"


def _username(request: HttpRequest) -> str:
    return request.POST.get("username", "")[:150].strip().lower() or "-"


def _pair_key(group: str, request: HttpRequest) -> str:
    return f"{_username(request)}\n{client_address(request)}"


def _address_key(group: str, request: HttpRequest) -> str:
    return client_address(request)


def _counters() -> tuple[tuple[str, Callable[[str, HttpRequest], str], str], ...]:
    return (
        (_BY_PAIR, _pair_key, settings.ADMIN_LOGIN_RATE_LIMIT),
        (_BY_ADDRESS, _address_key, settings.ADMIN_LOGIN_ADDRESS_RATE_LIMIT),
    )


def _too_many_failures(request: HttpRequest) -> bool:
    for group, key, rate in _counters():
        usage = get_usage(request, group=group, key=key, rate=rate, increment=False)
        # (None or a zero limit: the cache did not answer; a failure count it cannot read
        # is no reason to refuse someone.)
        if usage and usage["limit"] and usage["count"] >= usage["limit"]:
            return True
    return False


def _count_failure(request: HttpRequest) -> None:
    for group, key, rate in _counters():
        get_usage(request, group=group, key=key, rate=rate, increment=True)


def throttled(login_view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wrap the admin's login view: refuse a sign-in from where too many have just failed.

    A refused attempt never reaches the password check and counts nothing more.
    """

    def login(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "POST":
            return login_view(request, *args, **kwargs)
        if _too_many_failures(request):
            response = HttpResponse(
                "Too many failed sign-ins from here. Wait a minute, then try again.",
                status=429,
                content_type="text/plain; charset=utf-8",
            )
            response["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return response
        response = login_view(request, *args, **kwargs)
        # The form again (200) and no one signed in: a wrong username or password.
        if response.status_code == 200 and not request.user.is_authenticated:
            _count_failure(request)
        return response

    return login
