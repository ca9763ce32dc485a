"""``Authorization: Bearer <API key>`` alone: the key names its tenant (one credential, as
a generated client holds)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from gateway.audit import Actor
from payments.models import Payment
from payments.tests.helpers import PAYMENTS_URL, assert_error, payment_body, post_json
from tenants import authentication
from tenants.models import ApiKey
from tenants.services import api_key_revoke

pytestmark = pytest.mark.django_db


def client_with(**headers) -> APIClient:
    client = APIClient()
    client.credentials(**headers)
    return client


def bearer(key: str, **headers) -> APIClient:
    return client_with(HTTP_AUTHORIZATION=f"Bearer {key}", **headers)


def test_a_bearer_key_alone_opens_its_tenant(alice, bob, mtn_http):
    created = post_json(bearer(alice.api_key), PAYMENTS_URL, payment_body(), key="bearer-1")

    assert created.status_code == 201, created.content
    payment = Payment.objects.get(pk=created.json()["id"])
    assert payment.tenant == alice.tenant
    listed = bearer(alice.api_key).get(PAYMENTS_URL).json()["results"]
    assert [p["id"] for p in listed] == [str(payment.pk)]
    assert bearer(bob.api_key).get(PAYMENTS_URL).json()["results"] == []


def test_the_scheme_name_is_case_insensitive(alice):
    client = client_with(HTTP_AUTHORIZATION=f"bearer {alice.api_key}")

    assert client.get(PAYMENTS_URL).status_code == 200


def test_a_bearer_key_with_its_own_tenant_id_is_accepted(alice):
    assert bearer(alice.api_key, HTTP_X_TENANT_ID="alice").get(PAYMENTS_URL).status_code == 200


def test_a_bearer_key_with_another_tenants_id_is_401_and_creates_nothing(alice, bob, mtn_http):
    client = bearer(alice.api_key, HTTP_X_TENANT_ID="bob")

    error = assert_error(
        post_json(client, PAYMENTS_URL, payment_body(), key="bearer-2"),
        401,
        "authentication_failed",
    )

    assert error["message"] == authentication.NO_MATCH
    assert not Payment.objects.exists()
    assert not mtn_http.calls


def test_an_unknown_or_revoked_bearer_key_gets_one_answer(alice):
    unknown = bearer("mgw_" + "x" * 43).get(PAYMENTS_URL)
    api_key_revoke(api_key=ApiKey.objects.get(tenant=alice.tenant), actor=Actor.system())
    revoked = bearer(alice.api_key).get(PAYMENTS_URL)

    assert unknown.json() == revoked.json()
    assert assert_error(revoked, 401, "authentication_failed")["message"] == (
        authentication.UNKNOWN_KEY
    )


def test_another_authorization_scheme_alone_is_refused_with_what_to_send(alice):
    response = client_with(HTTP_AUTHORIZATION="Basic YWxpY2U6c2VjcmV0").get(PAYMENTS_URL)

    assert "Bearer" in assert_error(response, 401, "authentication_failed")["message"]


def test_another_scheme_beside_the_two_headers_is_left_to_them(alice):
    client = client_with(
        HTTP_AUTHORIZATION="Basic YWxpY2U6c2VjcmV0",
        HTTP_X_API_KEY=alice.api_key,
        HTTP_X_TENANT_ID="alice",
    )

    assert client.get(PAYMENTS_URL).status_code == 200


def test_two_different_keys_are_refused(alice, bob):
    client = bearer(alice.api_key, HTTP_X_API_KEY=bob.api_key, HTTP_X_TENANT_ID="bob")

    message = assert_error(client.get(PAYMENTS_URL), 401, "authentication_failed")["message"]
    assert "different keys" in message


def test_a_bearer_key_is_cached_like_a_header_key(alice, monkeypatch):
    from tenants import key_cache

    monkeypatch.setattr(key_cache, "in_use", lambda: True)
    loads = []
    real = authentication._active_keys
    monkeypatch.setattr(authentication, "_active_keys", lambda **kw: loads.append(kw) or real(**kw))
    client = bearer(alice.api_key)

    assert client.get(PAYMENTS_URL).status_code == 200
    assert client.get(PAYMENTS_URL).status_code == 200
    assert len(loads) == 1
    assert loads[0]["slug"] is None
