"""Failure reasons as sentences a merchant can show a payer, never the code repeated."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import responses

from gateway.audit import Actor
from mtn.accounts import mtn_account_set
from payments import services
from payments.reasons import (
    REASON_SENTENCES,
    UNKNOWN_REASON,
    failure_message,
    is_sentence,
    transfer_failure_message,
    transfer_failure_reason,
)
from payments.tests.helpers import PAYMENTS_URL, REQUESTTOPAY_URL, payment_body, post_json
from payments.tests.services.conftest import mtn_status_body, status_url, submitted
from webhooks.models import MerchantDelivery

# Every reason code in MTN's spec enum and failure-reason lists (reference sections 6.2, 6.3).
MTN_REASON_CODES = [
    "PAYER_NOT_FOUND",
    "PAYEE_NOT_FOUND",
    "NOT_ENOUGH_FUNDS",
    "APPROVAL_REJECTED",
    "EXPIRED",
    "TRANSACTION_CANCELED",
    "PAYER_LIMIT_REACHED",
    "PAYEE_NOT_ALLOWED_TO_RECEIVE",
    "PAYMENT_NOT_APPROVED",
    "NOT_ALLOWED",
    "NOT_ALLOWED_TARGET_ENVIRONMENT",
    "INVALID_CALLBACK_URL_HOST",
    "INVALID_CURRENCY",
    "SERVICE_UNAVAILABLE",
    "INTERNAL_PROCESSING_ERROR",
    "COULD_NOT_PERFORM_TRANSACTION",
    "RESOURCE_NOT_FOUND",
    "RESOURCE_ALREADY_EXIST",
    "SENDER_ACCOUNT_NOT_ACTIVE",
    "TRANSACTION_NOT_FOUND",
    "NOT_SUCCESSFULLY_COMPLETED",
    "ONGOING",
    "PAYER_DELAYED",
    "PAYEE_DELAYED",
    "PAYER_REJECTION",
    "UNKNOWN",
]


def assert_sentence(message: str, code: str) -> None:
    assert message
    assert code not in message
    assert message[0].isupper()
    assert message.endswith(".")
    assert len(message.split()) >= 5


@pytest.mark.parametrize("code", MTN_REASON_CODES)
@pytest.mark.parametrize("kind", ["payment", "payout", "refund"])
def test_every_mtn_reason_code_has_its_own_sentence(code, kind):
    assert code in REASON_SENTENCES

    message = failure_message(code=code, mtn_message=code, kind=kind, currency="EUR")

    assert_sentence(message, code)
    assert message != UNKNOWN_REASON


@pytest.mark.parametrize("code", MTN_REASON_CODES)
def test_a_code_without_any_message_still_gets_a_sentence(code):
    assert_sentence(failure_message(code=code, mtn_message=""), code)


def test_an_unknown_code_gets_a_sentence_that_does_not_repeat_it():
    message = failure_message(code="SOMETHING_NEW", mtn_message="SOMETHING_NEW")

    assert message == UNKNOWN_REASON
    assert_sentence(message, "SOMETHING_NEW")


def test_mtns_own_message_is_kept_when_it_is_a_real_sentence():
    message = failure_message(code="EXPIRED", mtn_message="The request expired before approval.")

    assert message == "The request expired before approval."


@pytest.mark.parametrize(
    "mtn_message", ["APPROVAL_REJECTED", "approval_rejected", "", "   ", "ERR-42", None]
)
def test_a_code_shaped_or_empty_mtn_message_is_replaced(mtn_message):
    message = failure_message(code="APPROVAL_REJECTED", mtn_message=mtn_message)

    assert message == REASON_SENTENCES["APPROVAL_REJECTED"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Currency not supported.", True),
        ("Payer not found", True),
        ("PAYER_NOT_FOUND", False),
        ("payer_not_found", False),
        ("Oops", False),
        ("", False),
    ],
)
def test_what_counts_as_a_sentence(text, expected):
    assert is_sentence(text, code="PAYER_NOT_FOUND") is expected


def test_invalid_currency_says_which_account_and_environment_refused_which_currency():
    message = failure_message(
        code="INVALID_CURRENCY",
        mtn_message="Currency not supported.",
        currency="UGX",
        account="default",
        target_environment="sandbox",
    )

    assert message == (
        "The MTN account 'default' (target environment 'sandbox') does not accept UGX; "
        "the sandbox takes only EUR."
    )


def test_invalid_currency_in_a_market_names_the_markets_currency():
    message = failure_message(
        code="INVALID_CURRENCY",
        currency="EUR",
        account="uganda",
        target_environment="mtnuganda",
    )

    assert message == (
        "The MTN account 'uganda' (target environment 'mtnuganda') does not accept EUR; "
        "it takes only UGX."
    )


def test_invalid_currency_in_an_unlisted_environment_still_explains():
    message = failure_message(
        code="INVALID_CURRENCY", currency="EUR", account="x", target_environment="mtnmars"
    )

    assert "'mtnmars'" in message
    assert "does not accept EUR" in message


def test_invalid_currency_uses_the_configured_target_environment_by_default(settings):
    settings.MTN_TARGET_ENVIRONMENT = "mtnghana"
    transfer = SimpleNamespace(
        failure_code="INVALID_CURRENCY",
        failure_message="Currency not supported.",
        kind="payment",
        currency="UGX",
    )

    message = transfer_failure_message(transfer)

    assert "'default' (target environment 'mtnghana') does not accept UGX" in message
    assert message.endswith("it takes only GHS.")


@pytest.mark.django_db
def test_an_object_that_records_its_account_names_that_account(settings):
    settings.MTN_TARGET_ENVIRONMENT = "sandbox"
    mtn_account_set(
        name="acme-uganda",
        target_environment="mtnuganda",
        currencies=["UGX"],
        credentials={
            "disbursement": {
                "subscription_key": "sub",
                "api_user": "2b4d6f80-1a3c-4e5f-8a7b-9c0d1e2f3a4b",
                "api_key": "key",
            }
        },
        base_url="https://mtn.test",
        actor=Actor.system(),
    )
    transfer = SimpleNamespace(
        failure_code="INVALID_CURRENCY",
        failure_message="",
        kind="payout",
        currency="EUR",
        mtn_account="acme-uganda",
    )

    message = transfer_failure_message(transfer)

    assert message.startswith("The MTN account 'acme-uganda' (target environment 'mtnuganda')")
    assert message.endswith("it takes only UGX.")


def test_not_enough_funds_on_a_payout_does_not_blame_a_payer():
    payout = failure_message(code="NOT_ENOUGH_FUNDS", mtn_message="NOT_ENOUGH_FUNDS", kind="payout")

    assert "payer" not in payout.lower()
    assert payout != failure_message(code="NOT_ENOUGH_FUNDS", kind="payment")


def test_a_transfer_that_did_not_fail_has_no_failure_reason():
    transfer = SimpleNamespace(failure_code="", failure_message="", kind="payment", currency="EUR")

    assert transfer_failure_reason(transfer) is None


# --- through the API and the merchant webhook -----------------------------------------------


@pytest.mark.django_db
def test_a_bare_string_reason_is_shown_as_a_sentence_in_the_api_and_the_webhook(alice, mtn):
    payment = submitted(alice.tenant, currency="EUR", amount="15.00")
    mtn.get(
        status_url(payment), json=mtn_status_body(payment, "FAILED", reason="APPROVAL_REJECTED")
    )

    services.transfer_poll(transfer=payment)

    shown = alice.client.get(f"{PAYMENTS_URL}/{payment.pk}").json()
    assert shown["status"] == "FAILED"
    assert shown["failure_reason"] == {
        "code": "APPROVAL_REJECTED",
        "message": "The payer declined the request on their phone.",
    }
    delivery = MerchantDelivery.objects.get(event_type="payment.failed")
    assert delivery.payload["data"]["failure_reason"] == shown["failure_reason"]


@pytest.mark.django_db
def test_ugx_on_the_sandbox_explains_that_the_sandbox_takes_only_eur(alice, mtn, settings):
    settings.MTN_TARGET_ENVIRONMENT = "sandbox"
    mtn.replace(
        responses.POST,
        REQUESTTOPAY_URL,
        status=500,
        json={"code": "INVALID_CURRENCY", "message": "Currency not supported."},
    )

    response = post_json(
        alice.client,
        PAYMENTS_URL,
        payment_body(currency="UGX", amount=1000),
        HTTP_PREFER="wait=5",  # answered with MTN's first answer
    )

    assert response.status_code == 201
    assert response.json()["status"] == "FAILED"
    expected = {
        "code": "INVALID_CURRENCY",
        "message": "The MTN account 'default' (target environment 'sandbox') does not accept "
        "UGX; the sandbox takes only EUR.",
    }
    assert response.json()["failure_reason"] == expected
    detail = alice.client.get(f"{PAYMENTS_URL}/{response.json()['id']}").json()
    assert detail["failure_reason"] == expected
    delivery = MerchantDelivery.objects.get(event_type="payment.failed")
    assert delivery.payload["data"]["failure_reason"] == expected
