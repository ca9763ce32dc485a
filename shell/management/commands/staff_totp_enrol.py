"""Enrol a staff member's authenticator app (TOTP) from the terminal."""

from __future__ import annotations

import io
from typing import Any

import segno
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from shell.otp import DEVICE_NAME, manual_key


class Command(BaseCommand):
    help = (
        "Give a staff user a TOTP device for two-factor sign-in to the admin and print its "
        "otpauth:// URL and QR code (scan it with an authenticator app). Refuses a user who "
        "already has one unless --replace (which removes the old devices)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--replace",
            action="store_true",
            help="Remove the user's existing TOTP devices first (a lost phone).",
        )
        parser.add_argument(
            "--no-qr", action="store_true", help="Print only the URL and the key, no QR code."
        )

    def handle(self, *args: Any, username: str, replace: bool, no_qr: bool, **options: Any) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        if not user.is_staff:
            raise CommandError(f"{username} is not staff: the admin would not let them in anyway.")
        with transaction.atomic():
            existing = TOTPDevice.objects.select_for_update().filter(user=user)
            if existing.filter(confirmed=True).exists() and not replace:
                raise CommandError(
                    f"{username} already has a TOTP device; use --replace to issue a new one "
                    "(the old one stops working)."
                )
            existing.delete()
            device = TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=True)
        url = device.config_url
        self.stdout.write(f"TOTP device for {username} (issuer momo-gateway).")
        self.stdout.write(f"otpauth URL: {url}")
        self.stdout.write(f"Key, to type in by hand: {manual_key(device)}")
        if not no_qr:
            qr = io.StringIO()
            segno.make(url, error="m").terminal(out=qr, compact=True)
            self.stdout.write(qr.getvalue())
        self.stdout.write(
            "Scan it with an authenticator app; the admin then asks for its 6-digit code after "
            "the password. The URL is a secret: do not keep it."
        )
