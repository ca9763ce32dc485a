"""Unknown query parameters are 400 validation_error; the payer/payee filter; trailing slash."""

from __future__ import annotations

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from gateway.audit import Actor
from gateway.models import IdempotencyKey
from payments import services
from payments.models import Payment, Payout
from payments.tests.helpers import (
    PAYMENTS_URL,
    PAYOUTS_URL,
    assert_error,
    assert_nothing_created,
    assert_validation_error,
    payment_body,
    post_json,
)

pytestmark = pytest.mark.django_db


def make(tenant, model, party: str):
    return services.transfer_create(
        model=model,
        tenant=tenant,
        actor=Actor.system(),
        amount=Decimal("15.00"),
        currency="EUR",
        party=party,
    )


def ids(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {item["id"] for item in response.json()["results"]}


@pytest.mark.parametrize("url", [PAYMENTS_URL, PAYOUTS_URL])
def test_an_unknown_list_parameter_is_a_validation_error_naming_it(alice, url):
    make(alice.tenant, Payment, "256772123456")

    response = alice.client.get(url, {"stauts": "FAILED"})

    fields = assert_validation_error(response, "stauts")
    assert "status" in fields["stauts"][0]  # it lists what the endpoint takes
    message = response.json()["error"]["message"]
    assert "'stauts'" in message
    assert message != "validation_error"


def test_several_unknown_parameters_are_all_named(alice):
    response = alice.client.get(PAYMENTS_URL, {"foo": "1", "bar": "2", "limit": "5"})

    assert_validation_error(response, "bar", "foo")


def test_payee_is_not_a_payment_filter_nor_payer_a_payout_filter(alice):
    assert_validation_error(alice.client.get(PAYMENTS_URL, {"payee": "256772123456"}), "payee")
    assert_validation_error(alice.client.get(PAYOUTS_URL, {"payer": "256772123456"}), "payer")


@pytest.mark.parametrize("suffix", ["", "/events"])
@pytest.mark.parametrize(("url", "model"), [(PAYMENTS_URL, Payment), (PAYOUTS_URL, Payout)])
def test_retrieve_and_events_take_no_query_parameter(alice, url, model, suffix):
    transfer = make(alice.tenant, model, "256772123456")

    response = alice.client.get(f"{url}/{transfer.pk}{suffix}", {"expand": "events"})

    assert_validation_error(response, "expand")
    assert alice.client.get(f"{url}/{transfer.pk}{suffix}").status_code == 200


def test_a_create_with_a_query_parameter_is_refused_and_creates_nothing(alice, mtn_http):
    response = post_json(alice.client, f"{PAYMENTS_URL}?dry_run=1", payment_body())

    assert_validation_error(response, "dry_run")
    assert_nothing_created(mtn_http)
    assert not IdempotencyKey.objects.exists()


def test_authentication_comes_before_the_query_parameter_check(db):
    response = APIClient().get(PAYMENTS_URL, {"foo": "1"})

    assert_error(response, 401, "authentication_failed")


@pytest.mark.parametrize("payer", ["256772123456", "+256772123456", " 256772123456"])
def test_payments_filter_by_payer_with_or_without_a_plus(alice, bob, payer):
    mine = make(alice.tenant, Payment, "256772123456")
    make(alice.tenant, Payment, "256772000000")
    make(bob.tenant, Payment, "256772123456")  # another tenant's: never shown

    assert ids(alice.client.get(PAYMENTS_URL, {"payer": payer})) == {str(mine.pk)}


def test_an_unencoded_plus_in_the_url_still_finds_the_payer(alice):
    mine = make(alice.tenant, Payment, "256772123456")

    assert ids(alice.client.get(f"{PAYMENTS_URL}?payer=+256772123456")) == {str(mine.pk)}


def test_payouts_filter_by_payee(alice):
    mine = make(alice.tenant, Payout, "46733123450")
    make(alice.tenant, Payout, "256772000000")

    assert ids(alice.client.get(PAYOUTS_URL, {"payee": "+46733123450"})) == {str(mine.pk)}


def test_the_payer_filter_combines_with_the_others_and_pages_keep_it(alice):
    wanted = [make(alice.tenant, Payment, "256772123456") for _ in range(3)]
    make(alice.tenant, Payment, "256772000000")

    first = alice.client.get(PAYMENTS_URL, {"payer": "256772123456", "limit": "2"})
    second = alice.client.get(first.json()["next"])

    assert ids(first) | ids(second) == {str(p.pk) for p in wanted}
    assert "payer=256772123456" in first.json()["next"]


@pytest.mark.parametrize("payer", ["12345678", "abc", "+", "2567721234567890", "256 772123456"])
def test_a_malformed_payer_filter_is_a_validation_error(alice, payer):
    assert_validation_error(alice.client.get(PAYMENTS_URL, {"payer": payer}), "payer")


@pytest.mark.parametrize(
    ("slashed", "target"),
    [
        ("/api/v1/payments/", "/api/v1/payments"),
        ("/api/v1/payouts/", "/api/v1/payouts"),
        ("/api/v1/payments/5f0c6a8e-1111-4222-8333-944455556666/", None),
    ],
)
def test_a_trailing_slash_is_a_404_pointing_at_the_path_without_it(alice, slashed, target):
    response = alice.client.get(slashed)

    error = assert_error(response, 404, "not_found")
    assert slashed in error["message"]
    assert f"use {target or slashed.rstrip('/')}." in error["message"]


def test_a_post_to_the_slashed_path_creates_nothing(alice, mtn_http):
    response = post_json(alice.client, "/api/v1/payments/", payment_body())

    assert "use /api/v1/payments." in assert_error(response, 404, "not_found")["message"]
    assert_nothing_created(mtn_http)


def test_a_slashed_path_that_would_not_exist_without_the_slash_either_is_a_plain_404(alice):
    error = assert_error(alice.client.get("/api/v1/nothing-here/"), 404, "not_found")

    assert "use" not in error["message"]


def test_the_documented_paths_that_end_in_a_slash_still_answer(db):
    assert APIClient().get("/api/schema/").status_code == 200
