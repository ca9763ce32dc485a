"""The admin sign-in is throttled per (username, client address) and per client address.

A guesser is slowed down where they guess from; the person they guess at is never locked out
from anywhere else (issue 19 finding 3). Behind a proxy the client address comes from
``X-Forwarded-For``, believed only from ``FORWARDED_ALLOW_IPS``.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import RequestFactory

from gateway.forwarded import client_address

pytestmark = pytest.mark.django_db

PASSWORD = "right-password-123"  # noqa: S105 - a test user's
PROXY = "10.9.0.2"


@pytest.fixture
def staff(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.ADMIN_LOGIN_RATE_LIMIT = "3/h"  # an hour: no window boundary mid-test
    settings.ADMIN_LOGIN_ADDRESS_RATE_LIMIT = "5/h"
    settings.FORWARDED_ALLOW_IPS = [PROXY]
    return get_user_model().objects.create_user("support", password=PASSWORD, is_staff=True)


def attempt(client, username: str, password: str, address: str = "10.0.0.1", **extra: str):
    client.logout()
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password},
        REMOTE_ADDR=address,
        **extra,
    )


def via_proxy(client, username: str, password: str, address: str):
    return attempt(client, username, password, PROXY, HTTP_X_FORWARDED_FOR=address)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_guessing_from_one_address_is_blocked_there_even_with_the_right_password(client, staff):
    for _ in range(3):
        assert attempt(client, "support", "wrong").status_code == 200  # the form again

    blocked = attempt(client, "support", PASSWORD)

    assert blocked.status_code == 429
    assert blocked["Retry-After"] == "60"
    assert not signed_in(client)


def test_a_guesser_elsewhere_never_locks_the_staff_member_out(client, staff):
    """The lock-out attempt of the review: many wrong passwords for "support" from one
    address; the staff member, from their own address, signs in at once."""
    for _ in range(20):
        attempt(client, "support", "wrong", address="198.51.100.66")
    assert attempt(client, "support", PASSWORD, address="198.51.100.66").status_code == 429

    own = attempt(client, "support", PASSWORD, address="203.0.113.10")

    assert own.status_code == 302
    assert signed_in(client)


def test_behind_a_proxy_the_guesser_is_told_apart_by_x_forwarded_for(client, staff):
    """Every request arrives from the proxy: the guesser's failures must not block the
    staff member who comes through the same proxy from another address."""
    for _ in range(10):
        via_proxy(client, "support", "wrong", "198.51.100.66")
    assert via_proxy(client, "support", PASSWORD, "198.51.100.66").status_code == 429

    own = via_proxy(client, "support", PASSWORD, "203.0.113.10")

    assert own.status_code == 302
    assert signed_in(client)


def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(client, staff):
    """A guesser cannot dodge the counter by writing a new X-Forwarded-For each time."""
    for index in range(3):
        attempt(client, "support", "wrong", "198.51.100.66", HTTP_X_FORWARDED_FOR=f"1.2.3.{index}")

    blocked = attempt(client, "support", PASSWORD, "198.51.100.66", HTTP_X_FORWARDED_FOR="9.9.9.9")

    assert blocked.status_code == 429


def test_rotating_usernames_is_caught_by_address(client, staff):
    for name in ("a", "b", "c", "d", "e"):
        attempt(client, name, "wrong")

    assert attempt(client, "support", PASSWORD).status_code == 429
    assert attempt(client, "support", PASSWORD, address="10.0.0.2").status_code == 302


def test_successful_sign_ins_count_nothing(client, staff):
    for _ in range(8):
        assert attempt(client, "support", PASSWORD).status_code == 302


def test_a_normal_login_works(client, staff):
    response = attempt(client, "support", PASSWORD)

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(staff.pk)


@pytest.mark.parametrize(
    ("trusted", "peer", "forwarded", "client"),
    [
        (["10.9.0.2"], "10.9.0.2", "203.0.113.7", "203.0.113.7"),
        (["10.9.0.2"], "10.9.0.2", "6.6.6.6, 203.0.113.7", "203.0.113.7"),  # forged left part
        (["10.9.0.0/24"], "10.9.0.2", "203.0.113.7, 10.9.0.5", "203.0.113.7"),  # two proxies
        (["10.9.0.2"], "198.51.100.1", "203.0.113.7", "198.51.100.1"),  # not a proxy of ours
        (["10.9.0.2"], "10.9.0.2", "", "10.9.0.2"),
        (["10.9.0.2"], "10.9.0.2", "not-an-address", "10.9.0.2"),
        (["*"], "10.9.0.2", "6.6.6.6, 203.0.113.7", "203.0.113.7"),  # the nearest proxy's word
        (["127.0.0.1", "::1"], "::1", "2001:db8::7", "2001:db8::7"),
    ],
)
def test_client_address(settings, trusted, peer, forwarded, client):
    settings.FORWARDED_ALLOW_IPS = trusted
    request = RequestFactory().get("/", REMOTE_ADDR=peer, HTTP_X_FORWARDED_FOR=forwarded)

    assert client_address(request) == client
