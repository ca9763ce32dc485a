"""The admin login is throttled per client address and per username."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user(
        "support", password="right-password-123", is_staff=True
    )


def attempt(client, username: str, password: str, address: str = "10.0.0.1"):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password},
        REMOTE_ADDR=address,
    )


def test_guessing_is_blocked_after_the_limit_even_with_the_right_password(client, staff, settings):
    settings.ADMIN_LOGIN_RATE_LIMIT = "3/h"  # an hour: no window boundary mid-test
    for _ in range(3):
        assert attempt(client, "support", "wrong").status_code == 200  # the form again

    blocked = attempt(client, "support", "right-password-123")

    assert blocked.status_code == 429
    assert blocked["Retry-After"] == "60"
    assert "_auth_user_id" not in client.session


def test_rotating_usernames_is_caught_by_address(client, staff, settings):
    settings.ADMIN_LOGIN_RATE_LIMIT = "3/h"  # an hour: no window boundary mid-test
    for name in ("a", "b", "c"):
        attempt(client, name, "wrong")

    assert attempt(client, "support", "right-password-123").status_code == 429


def test_spreading_over_addresses_is_caught_by_username(client, staff, settings):
    settings.ADMIN_LOGIN_RATE_LIMIT = "3/h"  # an hour: no window boundary mid-test
    for index in range(3):
        attempt(client, "support", "wrong", address=f"10.0.0.{index + 10}")

    assert attempt(client, "support", "right-password-123", "10.0.0.99").status_code == 429


def test_a_normal_login_works(client, staff):
    response = attempt(client, "support", "right-password-123")

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(staff.pk)
