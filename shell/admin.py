"""The admin pages of staff members' TOTP devices: list, look, delete; never the secret.

django-otp's own device admin shows each device's hex key on its change page, the whole
``otpauth://`` URL (with the key) and its QR code on a "config" page, and lets a superuser add
a device with a key of their choosing for anyone. A TOTP secret is shown once, at enrolment
(``staff_totp_enrol``, or the sign-in's enrolment page where ``ADMIN_ALLOW_WEB_ENROLMENT``
is on), and never again in any page; so the gateway registers its own admin for the devices:
read-only, without the key, without a config or QR page, without adding from the browser
(an operator enrols with the command). Deleting a device stays possible, for a lost phone.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django_otp.plugins.otp_totp.models import TOTPDevice


class TOTPDeviceAdmin(admin.ModelAdmin):
    list_display = ("user", "name", "confirmed", "created_at", "last_used_at")
    list_filter = ("confirmed",)
    search_fields = ("user__username", "name")
    list_select_related = ("user",)
    # Everything but the key (and t0, which says nothing without it).
    fields = (
        "user",
        "name",
        "confirmed",
        "created_at",
        "last_used_at",
        "digits",
        "step",
        "tolerance",
        "drift",
        "throttling_failure_count",
        "throttling_failure_timestamp",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # enrolment shows the secret to the one who enrols: not in this page

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a page to look at; a new key is a new enrolment (--replace)


if admin.site.is_registered(TOTPDevice):
    admin.site.unregister(TOTPDevice)
admin.site.register(TOTPDevice, TOTPDeviceAdmin)
