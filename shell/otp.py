"""Two-factor sign-in for staff: a TOTP after the password, and enrolment of a device.

With ``ADMIN_REQUIRE_2FA`` on, the admin site lets a staff member in only once their session
has passed a one-time password (django-otp's ``OTPMiddleware`` marks the session). A staff
member with no confirmed device is shown the enrolment page instead: a QR code for an
authenticator app and a first code to confirm it, but only where ``ADMIN_ALLOW_WEB_ENROLMENT``
is on (the default only with ``DEBUG``): otherwise a password alone would be enough to enrol
a device and so to pass the second factor. Where it is off, the page tells the staff member
to ask an operator, who runs ``manage.py staff_totp_enrol USERNAME`` from a terminal. Codes
are throttled per user like the password (and by django-otp's own growing delay per device).
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlencode

import segno
from django.conf import settings
from django.contrib.auth import REDIRECT_FIELD_NAME, logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django_otp import login as otp_login
from django_otp import match_token
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_ratelimit.core import is_ratelimited

from shell.admin_login import RETRY_AFTER_SECONDS

# The device a staff member enrols in the admin or with the command.
DEVICE_NAME = "authenticator app"


def second_factor_required() -> bool:
    return bool(settings.ADMIN_REQUIRE_2FA)


def is_verified(request: HttpRequest) -> bool:
    """Whether this session passed a TOTP (django-otp's middleware decides)."""
    check = getattr(request.user, "is_verified", None)
    return bool(check and check())


def awaits_second_factor(request: HttpRequest) -> bool:
    """A signed-in staff member who still owes the one-time password."""
    user = request.user
    return (
        second_factor_required()
        and user.is_authenticated
        and user.is_active
        and user.is_staff
        and not is_verified(request)
    )


def web_enrolment_allowed() -> bool:
    return bool(settings.ADMIN_ALLOW_WEB_ENROLMENT)


def has_confirmed_device(user: Any) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def device_for_enrolment(user: Any) -> TOTPDevice:
    """The staff member's unconfirmed device, made once and kept until confirmed.

    Reloading the enrolment page shows the same QR code, so a code from an app that has
    already scanned it still confirms it.
    """
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("id").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)
    return device


def manual_key(device: TOTPDevice) -> str:
    """The secret in base32, in groups of four, for typing into an app by hand."""
    text = base64.b32encode(device.bin_key).decode("ascii").rstrip("=")
    return " ".join(text[index : index + 4] for index in range(0, len(text), 4))


def safe_next(request: HttpRequest) -> str:
    target = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME, "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("admin:index")


def _with_next(url_name: str, request: HttpRequest) -> str:
    return f"{reverse(url_name)}?{urlencode({REDIRECT_FIELD_NAME: safe_next(request)})}"


def redirect_to_second_factor(request: HttpRequest) -> HttpResponseRedirect:
    return HttpResponseRedirect(_with_next("admin:otp_verify", request))


def _too_many_codes(request: HttpRequest) -> bool:
    """Codes count against the same per-user limit as passwords."""
    return is_ratelimited(
        request,
        group="admin-otp-user",
        key=lambda _group, req: str(req.user.pk),
        rate=settings.ADMIN_LOGIN_RATE_LIMIT,
        method="POST",
        increment=True,
    )


def _throttled() -> HttpResponse:
    response = HttpResponse(
        "Too many codes tried. Wait a minute, then try again.",
        status=429,
        content_type="text/plain; charset=utf-8",
    )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _token(request: HttpRequest) -> str:
    return "".join(request.POST.get("otp_token", "").split())[:16]


def _signed_in_staff_or_login(request: HttpRequest) -> HttpResponse | None:
    if request.method == "POST" and "cancel" in request.POST:
        logout(request)
        return HttpResponseRedirect(reverse("admin:login"))
    if not (request.user.is_authenticated and request.user.is_active and request.user.is_staff):
        return HttpResponseRedirect(reverse("admin:login"))
    if not second_factor_required() or is_verified(request):
        return HttpResponseRedirect(safe_next(request))
    return None


def verify_view(request: HttpRequest, *, context: dict[str, Any]) -> HttpResponse:
    """The second step: a code from the staff member's authenticator app."""
    early = _signed_in_staff_or_login(request)
    if early is not None:
        return early
    if not has_confirmed_device(request.user):
        return HttpResponseRedirect(_with_next("admin:otp_enrol", request))
    error = ""
    if request.method == "POST":
        if _too_many_codes(request):
            return _throttled()
        device = match_token(request.user, _token(request))
        if device is not None:
            request.session.cycle_key()
            otp_login(request, device)
            return HttpResponseRedirect(safe_next(request))
        error = "That code is not right (or has expired). Try the current one."
    return TemplateResponse(
        request,
        "admin/shell/otp_verify.html",
        {**context, "title": "Two-factor sign-in", "error": error, "next": safe_next(request)},
    )


def enrol_view(request: HttpRequest, *, context: dict[str, Any]) -> HttpResponse:
    """First sign-in with 2FA required: scan a QR code, confirm with a first code."""
    early = _signed_in_staff_or_login(request)
    if early is not None:
        return early
    if has_confirmed_device(request.user):
        # A second device is added only with the command, by someone with the shell.
        return HttpResponseRedirect(_with_next("admin:otp_verify", request))
    if not web_enrolment_allowed():
        # Checked before any device is made: no secret is created or shown to someone who
        # has only proved the password.
        return TemplateResponse(
            request,
            "admin/shell/otp_enrol_closed.html",
            {
                **context,
                "title": "Two-factor sign-in is not set up",
                "username": request.user.get_username(),
            },
            status=403,
        )
    device = device_for_enrolment(request.user)
    error = ""
    if request.method == "POST":
        if _too_many_codes(request):
            return _throttled()
        if device.verify_token(_token(request)):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            request.session.cycle_key()
            otp_login(request, device)
            return HttpResponseRedirect(safe_next(request))
        error = "That code does not match. Check the app shows momo-gateway, then try again."
    uri = device.config_url  # issuer: OTP_TOTP_ISSUER
    return TemplateResponse(
        request,
        "admin/shell/otp_enrol.html",
        {
            **context,
            "title": "Set up two-factor sign-in",
            "error": error,
            "next": safe_next(request),
            "qr_svg": segno.make(uri, error="m").svg_inline(scale=5, dark="#1b1b1b"),
            "manual_key": manual_key(device),
        },
    )
