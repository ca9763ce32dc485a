"""Two-factor sign-in for staff: with ADMIN_REQUIRE_2FA on, a TOTP after the password."""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from gateway.tests.production.helpers import production_secrets
from gateway.tests.test_settings import random_secret_key

PASSWORD = "right-password-123"  # noqa: S105 - a test user's


def current_code(device: TOTPDevice) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def required(settings: Any) -> None:
    settings.ADMIN_REQUIRE_2FA = True


@pytest.fixture
def web_enrolment(settings: Any) -> None:
    settings.ADMIN_ALLOW_WEB_ENROLMENT = True


@pytest.fixture
def no_web_enrolment(settings: Any) -> None:
    settings.ADMIN_ALLOW_WEB_ENROLMENT = False


@pytest.fixture
def staff(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser("support", "s@example.com", PASSWORD)


@pytest.fixture
def device(staff: Any) -> TOTPDevice:
    return TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)


def log_in(client: Any, next_url: str = "/admin/payments/payment/") -> Any:
    return client.post(
        f"/admin/login/?next={next_url}", {"username": "support", "password": PASSWORD}
    )


# --- the password is not enough ----------------------------------------------------------


def test_after_the_password_staff_are_sent_to_the_code_step(client, required, device):
    response = log_in(client)

    assert response.status_code == 302
    assert response["Location"] == "/admin/otp/?next=%2Fadmin%2Fpayments%2Fpayment%2F"
    assert "_auth_user_id" in client.session  # the password was right...
    # ...but no admin page opens without the code.
    page = client.get("/admin/payments/payment/")
    assert page.status_code == 302
    assert page["Location"].startswith("/admin/login/")
    assert client.get(page["Location"])["Location"].startswith("/admin/otp/")


def test_a_valid_code_opens_the_admin_and_goes_where_asked(client, required, device):
    log_in(client)

    response = client.post(
        "/admin/otp/", {"otp_token": current_code(device), "next": "/admin/payments/payment/"}
    )

    assert response.status_code == 302
    assert response["Location"] == "/admin/payments/payment/"
    assert client.get("/admin/payments/payment/").status_code == 200
    assert client.get("/admin/").status_code == 200


def test_a_wrong_code_is_refused(client, required, device):
    log_in(client)
    right = current_code(device)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"

    response = client.post("/admin/otp/", {"otp_token": wrong})

    assert response.status_code == 200
    assert "That code is not right" in response.content.decode()
    assert client.get("/admin/").status_code == 302


def test_codes_are_throttled_per_user(client, required, device, settings):
    settings.ADMIN_LOGIN_RATE_LIMIT = "3/h"  # an hour: no window boundary mid-test
    log_in(client)
    for _ in range(3):
        client.post("/admin/otp/", {"otp_token": "000000"})

    blocked = client.post("/admin/otp/", {"otp_token": current_code(device)})

    assert blocked.status_code == 429
    assert client.get("/admin/").status_code == 302


def test_the_password_step_is_still_throttled(client, required, device, settings):
    settings.ADMIN_LOGIN_RATE_LIMIT = "2/h"
    for _ in range(2):
        client.post("/admin/login/", {"username": "support", "password": "wrong"})

    assert log_in(client).status_code == 429
    assert "_auth_user_id" not in client.session


def test_staff_can_log_out_from_the_code_step(client, required, device):
    log_in(client)

    response = client.post("/admin/otp/", {"cancel": "Log out"})

    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


def test_without_the_setting_the_password_is_enough(client, settings, device):
    settings.ADMIN_REQUIRE_2FA = False

    log_in(client)

    assert client.get("/admin/payments/payment/").status_code == 200


def test_the_code_step_is_not_for_anonymous_visitors(client, required):
    response = client.get("/admin/otp/")

    assert response.status_code == 302
    assert response["Location"] == "/admin/login/"


# --- enrolment ----------------------------------------------------------------------------


def test_staff_without_a_device_enrol_with_a_qr_code_and_a_first_code(
    client, required, web_enrolment, staff
):
    response = log_in(client)
    enrol = client.get(response["Location"], follow=True)

    assert enrol.request["PATH_INFO"] == "/admin/otp/enrol/"
    content = enrol.content.decode()
    assert "<svg" in content  # the QR code, drawn in the page
    device = TOTPDevice.objects.get(user=staff)
    assert not device.confirmed
    assert "".join(content.split('id="otp-manual-key">')[1].split("<")[0].split()) in (
        device.config_url
    )

    confirmed = client.post("/admin/otp/enrol/", {"otp_token": current_code(device)})

    assert confirmed.status_code == 302
    device.refresh_from_db()
    assert device.confirmed
    assert client.get("/admin/").status_code == 200


def test_enrolment_with_a_wrong_code_confirms_nothing(client, required, web_enrolment, staff):
    log_in(client)
    client.get("/admin/otp/enrol/")
    device = TOTPDevice.objects.get(user=staff)

    response = client.post("/admin/otp/enrol/", {"otp_token": "12345"})

    assert response.status_code == 200
    device.refresh_from_db()
    assert not device.confirmed
    assert client.get("/admin/").status_code == 302


def test_enrolment_is_closed_to_staff_who_have_a_device(client, required, device):
    log_in(client)

    response = client.get("/admin/otp/enrol/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/otp/?")
    assert TOTPDevice.objects.filter(user=device.user).count() == 1


def test_without_web_enrolment_a_password_alone_cannot_add_a_device(
    client, required, no_web_enrolment, staff
):
    response = log_in(client)
    page = client.get(response["Location"], follow=True)

    assert page.request["PATH_INFO"] == "/admin/otp/enrol/"
    assert page.status_code == 403
    content = page.content.decode()
    assert "python manage.py staff_totp_enrol support" in content
    assert 'id="otp-qr"' not in content  # no QR code, so no secret shown
    assert "otp-manual-key" not in content
    assert not TOTPDevice.objects.exists()
    assert client.get("/admin/").status_code == 302


def test_without_web_enrolment_posting_a_code_confirms_nothing(
    client, required, no_web_enrolment, staff
):
    log_in(client)

    response = client.post("/admin/otp/enrol/", {"otp_token": "123456"})

    assert response.status_code == 403
    assert not TOTPDevice.objects.exists()
    assert client.get("/admin/").status_code == 302


def test_without_web_enrolment_staff_enrolled_by_an_operator_sign_in_with_their_code(
    client, required, no_web_enrolment, staff
):
    call_command("staff_totp_enrol", "support", "--no-qr", stdout=StringIO())
    device = TOTPDevice.objects.get(user=staff, confirmed=True)
    log_in(client)

    response = client.post("/admin/otp/", {"otp_token": current_code(device)})

    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_enrol_command_prints_the_url_and_a_qr_code(staff):
    out = StringIO()

    call_command("staff_totp_enrol", "support", stdout=out)

    device = TOTPDevice.objects.get(user=staff)
    assert device.confirmed
    text = out.getvalue()
    assert "otpauth://totp/momo-gateway%3Asupport?secret=" in text
    assert device.config_url in text
    assert "█" in text  # the QR code, in the terminal


def test_enrol_command_refuses_a_second_device_unless_replacing(device):
    with pytest.raises(CommandError, match="already has a TOTP device"):
        call_command("staff_totp_enrol", "support", stdout=StringIO())
    assert list(TOTPDevice.objects.filter(user=device.user)) == [device]

    call_command("staff_totp_enrol", "support", "--replace", "--no-qr", stdout=StringIO())

    [new] = TOTPDevice.objects.filter(user=device.user)
    assert new.pk != device.pk


def test_enrol_command_refuses_unknown_and_non_staff_users(django_user_model, db):
    django_user_model.objects.create_user("merchant", password=PASSWORD)

    with pytest.raises(CommandError, match="No user"):
        call_command("staff_totp_enrol", "nobody", stdout=StringIO())
    with pytest.raises(CommandError, match="not staff"):
        call_command("staff_totp_enrol", "merchant", stdout=StringIO())
    assert not TOTPDevice.objects.exists()


# --- the default ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DEBUG": "true"}, "False"),
        ({"DEBUG": "true", "ADMIN_REQUIRE_2FA": "true"}, "True"),
        ({"DEBUG": "false", "ALLOWED_HOSTS": "gateway.example.com"}, "True"),
    ],
)
def test_two_factor_is_required_by_default_only_with_debug_off(env, expected):
    assert setting_in_a_fresh_process("ADMIN_REQUIRE_2FA", env) == expected


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DEBUG": "true"}, "True"),
        ({"DEBUG": "false", "ALLOWED_HOSTS": "gateway.example.com"}, "False"),
        (
            {
                "DEBUG": "false",
                "ALLOWED_HOSTS": "gateway.example.com",
                "ADMIN_ALLOW_WEB_ENROLMENT": "true",
            },
            "True",
        ),
    ],
)
def test_web_enrolment_is_allowed_by_default_only_with_debug_on(env, expected):
    assert setting_in_a_fresh_process("ADMIN_ALLOW_WEB_ENROLMENT", env) == expected


def setting_in_a_fresh_process(name: str, env: dict[str, str]) -> str:
    environment = {
        name: value
        for name, value in os.environ.items()
        if name
        not in {
            "DEBUG",
            "ADMIN_REQUIRE_2FA",
            "ADMIN_ALLOW_WEB_ENROLMENT",
            "ALLOWED_HOSTS",
            *production_secrets(),
        }
    }
    # Real secrets: with DEBUG off the settings refuse to load on development ones.
    environment.update({**production_secrets(), **env, "SECRET_KEY": random_secret_key()})
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            f"print(settings.{name})",
        ],
        cwd=django_settings.BASE_DIR,
        env={**environment, "DJANGO_SETTINGS_MODULE": "gateway.settings"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]
