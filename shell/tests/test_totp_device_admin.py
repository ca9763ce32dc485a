"""No admin page shows a staff member's TOTP secret, and none adds a device (issue 19 finding 4).

django-otp's device admin showed the hex key on the change page and the whole otpauth:// URL
(and QR code) on a config page, and let a superuser add a device with a chosen key.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import NoReverseMatch, reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from shell.otp import manual_key

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/otp_totp/totpdevice/"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def device(django_user_model: Any) -> TOTPDevice:
    staff = django_user_model.objects.create_user("support", password="unused", is_staff=True)
    return TOTPDevice.objects.create(user=staff, name="authenticator app", confirmed=True)


def secrets_of(device: TOTPDevice) -> list[str]:
    spaced = manual_key(device)
    return [
        device.key,
        device.key.upper(),
        spaced,
        spaced.replace(" ", ""),
        "otpauth://",
        "secret=",
    ]


def assert_no_secret(html: str, device: TOTPDevice) -> None:
    for secret in secrets_of(device):
        assert secret not in html, secret


@pytest.mark.parametrize("web_enrolment", [False, True])
def test_the_device_pages_show_no_secret_and_offer_no_add(
    admin_client, device, settings, web_enrolment
):
    settings.ADMIN_ALLOW_WEB_ENROLMENT = web_enrolment
    listing = admin_client.get(CHANGELIST)
    page = admin_client.get(f"{CHANGELIST}{device.pk}/change/")

    assert listing.status_code == 200
    assert page.status_code == 200
    assert "authenticator app" in listing.content.decode()
    assert "support" in page.content.decode()
    for response in (listing, page):
        assert_no_secret(response.content.decode(), device)
    assert f"{CHANGELIST}add/" not in listing.content.decode()
    assert "qrcode" not in listing.content.decode() + page.content.decode()  # no QR link
    assert 'name="key"' not in page.content.decode()


@pytest.mark.parametrize("web_enrolment", [False, True])
def test_no_device_is_added_from_the_browser(admin_client, device, settings, web_enrolment):
    settings.ADMIN_ALLOW_WEB_ENROLMENT = web_enrolment
    assert admin_client.get(f"{CHANGELIST}add/").status_code == 403
    response = admin_client.post(
        f"{CHANGELIST}add/",
        {
            "user": device.user_id,
            "name": "attacker's phone",
            "key": "3132333435363738393031323334353637383930",
            "step": 30,
            "t0": 0,
            "digits": 6,
            "tolerance": 1,
            "drift": 0,
            "confirmed": "on",
        },
    )
    assert response.status_code == 403
    assert list(TOTPDevice.objects.values_list("name", flat=True)) == ["authenticator app"]


def test_there_is_no_config_or_qr_code_page(admin_client, device):
    for name in ("admin:otp_totp_totpdevice_config", "admin:otp_totp_totpdevice_qrcode"):
        with pytest.raises(NoReverseMatch):
            reverse(name, kwargs={"pk": device.pk})
    for suffix in ("config/", "qrcode/"):
        response = admin_client.get(f"{CHANGELIST}{device.pk}/{suffix}", follow=True)
        assert_no_secret(response.content.decode(), device)
        assert response.get("Content-Type", "").startswith("text/html")  # never an SVG code


def test_the_key_cannot_be_changed_from_the_browser(admin_client, device):
    key = device.key
    response = admin_client.post(
        f"{CHANGELIST}{device.pk}/change/",
        {"name": "renamed", "key": "3132333435363738393031323334353637383930"},
    )
    assert response.status_code == 403
    device.refresh_from_db()
    assert device.key == key
    assert device.name == "authenticator app"


def test_a_lost_phones_device_can_still_be_deleted(admin_client, device):
    response = admin_client.post(f"{CHANGELIST}{device.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not TOTPDevice.objects.exists()
