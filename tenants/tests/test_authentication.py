"""X-API-Key + X-Tenant-ID authentication, suspended tenants and per-key rate limits."""

from __future__ import annotations

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from gateway.audit import Actor
from gateway.models import IdempotencyKey
from payments.models import Payment
from payments.tests.helpers import (
    PAYMENTS_URL,
    PAYOUTS_URL,
    assert_error,
    assert_nothing_created,
    payment_body,
    payout_body,
    post_json,
)
from tenants.models import ApiKey
from tenants.services import api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db


def client_with(**headers) -> APIClient:
    client = APIClient()
    client.credentials(**headers)
    return client


def refused_clients(alice, bob) -> dict[str, APIClient]:
    return {
        "no-headers": client_with(),
        "no-key": client_with(HTTP_X_TENANT_ID="alice"),
        "no-tenant": client_with(HTTP_X_API_KEY=alice.api_key),
        "empty-key": client_with(HTTP_X_API_KEY="", HTTP_X_TENANT_ID="alice"),
        "unknown-key": client_with(HTTP_X_API_KEY="mgw_" + "x" * 43, HTTP_X_TENANT_ID="alice"),
        "right-prefix-wrong-key": client_with(
            HTTP_X_API_KEY=alice.api_key[:12] + "y" * 35, HTTP_X_TENANT_ID="alice"
        ),
        "other-tenants-key": client_with(HTTP_X_API_KEY=bob.api_key, HTTP_X_TENANT_ID="alice"),
        "key-for-other-tenant": client_with(HTTP_X_API_KEY=alice.api_key, HTTP_X_TENANT_ID="bob"),
        "unknown-tenant": client_with(HTTP_X_API_KEY=alice.api_key, HTTP_X_TENANT_ID="carol"),
        "huge-key": client_with(HTTP_X_API_KEY="k" * 5000, HTTP_X_TENANT_ID="alice"),
        # PostgreSQL cannot take NUL in a query parameter: must be a 401, not a 500.
        "nul-in-tenant": client_with(HTTP_X_API_KEY=alice.api_key, HTTP_X_TENANT_ID="ali\x00ce"),
        "nul-in-key": client_with(HTTP_X_API_KEY="mgw_\x00" + "x" * 20, HTTP_X_TENANT_ID="alice"),
    }


CASES = [
    "no-headers",
    "no-key",
    "no-tenant",
    "empty-key",
    "unknown-key",
    "right-prefix-wrong-key",
    "other-tenants-key",
    "key-for-other-tenant",
    "unknown-tenant",
    "huge-key",
    "nul-in-tenant",
    "nul-in-key",
]


@pytest.mark.parametrize("case", CASES)
def test_bad_credentials_on_create_are_401_and_create_nothing(alice, bob, mtn_http, case):
    client = refused_clients(alice, bob)[case]

    response = post_json(client, PAYMENTS_URL, payment_body())

    assert_error(response, 401, "authentication_failed")
    assert_nothing_created(mtn_http)


@pytest.mark.parametrize("case", CASES)
def test_bad_credentials_on_reads_are_401(alice, bob, mtn_http, case):
    payment_id = post_json(alice.client, PAYMENTS_URL, payment_body()).json()["id"]
    client = refused_clients(alice, bob)[case]

    for url in (
        PAYMENTS_URL,
        f"{PAYMENTS_URL}/{payment_id}",
        f"{PAYMENTS_URL}/{payment_id}/events",
    ):
        assert_error(client.get(url), 401, "authentication_failed")


def test_authentication_comes_before_validation_and_idempotency(alice, bob, mtn_http):
    client = refused_clients(alice, bob)["unknown-key"]

    assert_error(
        post_json(client, PAYMENTS_URL, "{not json", key=None), 401, "authentication_failed"
    )
    assert_nothing_created(mtn_http)


def test_a_revoked_key_is_401_and_creates_nothing(alice, mtn_http):
    api_key = ApiKey.objects.get(tenant=alice.tenant)
    api_key_revoke(api_key=api_key, actor=Actor.system())

    response = post_json(alice.client, PAYMENTS_URL, payment_body())

    assert_error(response, 401, "authentication_failed")
    assert_nothing_created(mtn_http)
    assert_error(alice.client.get(PAYMENTS_URL), 401, "authentication_failed")


def test_revoking_one_key_leaves_the_tenants_other_keys_working(alice, mtn_http):
    second = api_key_create(tenant=alice.tenant, actor=Actor.system())
    api_key_revoke(api_key=ApiKey.objects.get(prefix=alice.api_key[:12]), actor=Actor.system())

    client = client_with(HTTP_X_API_KEY=second.raw_key, HTTP_X_TENANT_ID="alice")

    assert client.get(PAYMENTS_URL).status_code == 200
    assert_error(alice.client.get(PAYMENTS_URL), 401, "authentication_failed")


def test_a_good_key_records_when_it_was_last_used(alice):
    api_key = ApiKey.objects.get(tenant=alice.tenant)
    assert api_key.last_used_at is None
    before = timezone.now()

    assert alice.client.get(PAYMENTS_URL).status_code == 200

    api_key.refresh_from_db()
    assert api_key.last_used_at >= before


def test_a_suspended_tenant_is_403_and_creates_nothing(alice, mtn_http):
    alice.tenant.is_active = False
    alice.tenant.save(update_fields=["is_active"])

    response = post_json(alice.client, PAYMENTS_URL, payment_body())

    assert_error(response, 403, "tenant_suspended")
    assert_nothing_created(mtn_http)
    assert_error(post_json(alice.client, PAYOUTS_URL, payout_body()), 403, "tenant_suspended")
    assert_error(alice.client.get(PAYMENTS_URL), 403, "tenant_suspended")
    assert_nothing_created(mtn_http)


def test_a_suspended_tenant_cannot_read_its_payments(alice, mtn_http):
    payment_id = post_json(alice.client, PAYMENTS_URL, payment_body()).json()["id"]
    alice.tenant.is_active = False
    alice.tenant.save(update_fields=["is_active"])

    assert_error(alice.client.get(f"{PAYMENTS_URL}/{payment_id}"), 403, "tenant_suspended")


def test_suspending_one_tenant_leaves_the_other_working(alice, bob, mtn_http):
    alice.tenant.is_active = False
    alice.tenant.save(update_fields=["is_active"])

    assert post_json(bob.client, PAYMENTS_URL, payment_body()).status_code == 201


def test_a_suspended_tenant_with_a_bad_key_is_401(alice, bob, mtn_http):
    alice.tenant.is_active = False
    alice.tenant.save(update_fields=["is_active"])

    client = refused_clients(alice, bob)["unknown-key"]

    assert_error(client.get(PAYMENTS_URL), 401, "authentication_failed")


# --- rate limits ----------------------------------------------------------------------------


@pytest.fixture
def two_per_hour(alice):
    # An hour-long window: the test cannot straddle a window boundary in practice.
    alice.tenant.rate_limit = "2/h"
    alice.tenant.save(update_fields=["rate_limit"])
    return alice


def test_over_the_tenants_rate_is_429_with_retry_after_and_creates_nothing(two_per_hour, mtn_http):
    alice = two_per_hour
    assert alice.client.get(PAYMENTS_URL).status_code == 200
    assert alice.client.get(PAYMENTS_URL).status_code == 200

    response = post_json(alice.client, PAYMENTS_URL, payment_body(), key="over")

    assert_error(response, 429, "rate_limited")
    retry_after = response["Retry-After"]
    assert retry_after.isdigit()
    assert 1 <= int(retry_after) <= 3600
    assert_nothing_created(mtn_http)
    assert_error(alice.client.get(PAYMENTS_URL), 429, "rate_limited")


def test_a_rate_limited_key_can_be_used_once_the_limit_allows(two_per_hour, mtn_http, settings):
    alice = two_per_hour
    alice.client.get(PAYMENTS_URL)
    alice.client.get(PAYMENTS_URL)
    assert_error(
        post_json(alice.client, PAYMENTS_URL, payment_body(), key="k"), 429, "rate_limited"
    )
    assert IdempotencyKey.objects.count() == 0

    alice.tenant.rate_limit = "100/h"
    alice.tenant.save(update_fields=["rate_limit"])
    response = post_json(alice.client, PAYMENTS_URL, payment_body(), key="k")

    assert response.status_code == 201
    assert not response.has_header("Idempotent-Replayed")
    assert Payment.objects.count() == 1


def test_rate_limits_are_per_api_key(two_per_hour, mtn_http):
    alice = two_per_hour
    alice.client.get(PAYMENTS_URL)
    alice.client.get(PAYMENTS_URL)
    assert_error(alice.client.get(PAYMENTS_URL), 429, "rate_limited")

    second = api_key_create(tenant=alice.tenant, actor=Actor.system())
    client = client_with(HTTP_X_API_KEY=second.raw_key, HTTP_X_TENANT_ID="alice")

    assert client.get(PAYMENTS_URL).status_code == 200


def test_one_tenants_rate_limit_does_not_touch_another(two_per_hour, bob, mtn_http):
    alice = two_per_hour
    for _ in range(3):
        alice.client.get(PAYMENTS_URL)

    for _ in range(3):
        assert bob.client.get(PAYMENTS_URL).status_code == 200


def test_the_default_rate_applies_without_a_tenant_rate(alice, settings):
    settings.RATE_LIMIT_DEFAULT = "1/h"

    assert alice.client.get(PAYMENTS_URL).status_code == 200
    assert_error(alice.client.get(PAYMENTS_URL), 429, "rate_limited")


def test_unauthenticated_requests_are_401_not_429(two_per_hour, bob):
    client = refused_clients(two_per_hour, bob)["unknown-key"]

    for _ in range(4):
        assert_error(client.get(PAYMENTS_URL), 401, "authentication_failed")
