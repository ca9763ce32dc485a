"""What a 401 says: a missing header is named; a key that does not open the tenant is
described in one sentence that does not tell a stranger which keys or tenants exist."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from gateway.audit import Actor
from payments.tests.helpers import (
    PAYMENTS_URL,
    assert_error,
    assert_nothing_created,
    payment_body,
    post_json,
)
from tenants.models import ApiKey
from tenants.services import api_key_revoke

pytestmark = pytest.mark.django_db


def client_with(**headers) -> APIClient:
    client = APIClient()
    client.credentials(**headers)
    return client


def test_a_missing_tenant_header_is_named_not_blamed_on_the_key(alice):
    response = client_with(HTTP_X_API_KEY=alice.api_key).get(PAYMENTS_URL)

    error = assert_error(response, 401, "authentication_failed")
    assert "X-Tenant-ID" in error["message"]
    assert "missing" in error["message"]
    assert "X-API-Key header" not in error["message"]


def test_a_missing_key_header_is_named(alice):
    response = client_with(HTTP_X_TENANT_ID="alice").get(PAYMENTS_URL)

    error = assert_error(response, 401, "authentication_failed")
    assert "X-API-Key header is missing" in error["message"]
    assert "X-Tenant-ID header" not in error["message"]


def test_both_headers_missing_names_both(db):
    error = assert_error(client_with().get(PAYMENTS_URL), 401, "authentication_failed")

    assert "X-API-Key" in error["message"]
    assert "X-Tenant-ID" in error["message"]
    assert "missing" in error["message"]


def test_an_empty_header_counts_as_missing(alice):
    response = client_with(HTTP_X_API_KEY=alice.api_key, HTTP_X_TENANT_ID="").get(PAYMENTS_URL)

    assert (
        "X-Tenant-ID header is missing"
        in assert_error(response, 401, "authentication_failed")["message"]
    )


def test_a_key_used_with_another_tenants_slug_says_key_and_tenant_do_not_match(alice, bob):
    response = client_with(HTTP_X_API_KEY=alice.api_key, HTTP_X_TENANT_ID="bob").get(PAYMENTS_URL)

    error = assert_error(response, 401, "authentication_failed")
    assert "do not match" in error["message"]
    assert "missing" not in error["message"]


def test_a_stranger_cannot_tell_another_tenants_key_from_no_key_at_all(alice, bob):
    """Every way of holding a key that does not open 'bob' answers byte for byte the same."""
    revoked = ApiKey.objects.get(tenant=alice.tenant)
    answers = {
        "alice's key for bob": client_with(
            HTTP_X_API_KEY=alice.api_key, HTTP_X_TENANT_ID="bob"
        ).get(PAYMENTS_URL),
        "a key nobody has": client_with(
            HTTP_X_API_KEY="mgw_" + "x" * 43, HTTP_X_TENANT_ID="bob"
        ).get(PAYMENTS_URL),
        "bob's prefix, wrong rest": client_with(
            HTTP_X_API_KEY=bob.api_key[:12] + "y" * 35, HTTP_X_TENANT_ID="bob"
        ).get(PAYMENTS_URL),
    }
    api_key_revoke(api_key=revoked, actor=Actor.system())
    answers["alice's revoked key for alice"] = client_with(
        HTTP_X_API_KEY=alice.api_key, HTTP_X_TENANT_ID="alice"
    ).get(PAYMENTS_URL)

    bodies = {name: (r.status_code, r.json()) for name, r in answers.items()}
    assert len({repr(body) for body in bodies.values()}) == 1, bodies
    status, body = next(iter(bodies.values()))
    assert status == 401
    assert body["error"]["code"] == "authentication_failed"
    header_names = {
        name: sorted(h for h in r.headers if h.lower() != "x-request-id")
        for name, r in answers.items()
    }
    assert len({tuple(names) for names in header_names.values()}) == 1, header_names


def test_a_refused_create_names_the_missing_header_and_creates_nothing(alice, mtn_http):
    client = client_with(HTTP_X_API_KEY=alice.api_key)

    error = assert_error(
        post_json(client, PAYMENTS_URL, payment_body()), 401, "authentication_failed"
    )

    assert "X-Tenant-ID" in error["message"]
    assert_nothing_created(mtn_http)


def test_a_401_message_is_a_sentence_not_the_code(alice):
    for client in (client_with(), client_with(HTTP_X_API_KEY="nope", HTTP_X_TENANT_ID="alice")):
        message = assert_error(client.get(PAYMENTS_URL), 401, "authentication_failed")["message"]
        assert message != "authentication_failed"
        assert message.endswith(".")
        assert " " in message


@pytest.mark.parametrize("not_a_slug", ["carol", "Demo", "ALICE", "alice shop", "x" * 65])
def test_an_x_tenant_id_that_is_no_tenants_slug_says_it_takes_the_slug_whatever_the_key(
    alice, not_a_slug
):
    """The message depends on the header alone: alice's key, a revoked key and no real key
    at all answer the same, so it tells nothing about keys."""
    keys = {"alice's": alice.api_key, "nobody's": "mgw_" + "x" * 43, "too long": "k" * 300}
    answers = {
        name: client_with(HTTP_X_API_KEY=key, HTTP_X_TENANT_ID=not_a_slug).get(PAYMENTS_URL)
        for name, key in keys.items()
    }

    bodies = {name: (r.status_code, r.json()) for name, r in answers.items()}
    assert len({repr(body) for body in bodies.values()}) == 1, bodies
    message = assert_error(answers["alice's"], 401, "authentication_failed")["message"]
    assert "slug" in message
    assert "do not match" not in message


def test_the_tenants_uuid_in_x_tenant_id_is_told_to_use_the_slug(alice):
    response = client_with(HTTP_X_API_KEY=alice.api_key, HTTP_X_TENANT_ID=str(alice.tenant.pk)).get(
        PAYMENTS_URL
    )

    assert "the tenant's slug" in assert_error(response, 401, "authentication_failed")["message"]
