"""When MTN disagrees, end to end: the API, the worker and the MTN simulator, which is told to
change its mind about a transaction after the gateway holds it final (its control API)."""

from __future__ import annotations

import io
import json
from decimal import Decimal

import pytest
import requests
from django.core.management import call_command
from django.core.management.base import CommandError

from ledger.selectors import balance_get, ledger_verify
from payments.models import Payment, Payout, Refund
from payments.states import Submission
from shell.worker import Worker
from webhooks.models import MerchantDelivery

from .conftest import create, make_due

pytestmark = pytest.mark.e2e

# A collection from this number succeeds; its refund fails with NOT_ENOUGH_FUNDS.
REFUND_FAILS_MSISDN = "46733123475"


def drive(obj) -> None:
    """Let the worker submit and poll ``obj`` now (creates may leave submission to it)."""
    for _ in range(3):
        make_due(obj)
        Worker().drain()
        obj.refresh_from_db()
        if obj.status != "PENDING":
            return


def submitted_only(obj) -> None:
    """Let the worker submit ``obj`` if the create did not (no poll: that is due later)."""
    obj.refresh_from_db()
    if obj.submission == Submission.QUEUED:
        make_due(obj)
        Worker().drain()
        obj.refresh_from_db()
    assert obj.submission == Submission.SUBMITTED


def mtn_changes_mind(sim, transfer, **body) -> dict:
    response = requests.post(
        f"{sim.base_url}/_simulator/transactions/{transfer.mtn_reference_id}",
        json=body,
        timeout=5,
    )
    assert response.status_code == 200, response.text
    return response.json()


def post_refund(shop, payment, body: dict, key: str):
    return shop.client.post(
        f"/api/v1/payments/{payment.pk}/refunds",
        json.dumps(body),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=key,
    )


def available(shop) -> Decimal:
    return balance_get(tenant_id=shop.tenant.pk, currency="EUR").available


def test_a_failed_refund_mtn_later_reports_successful_is_flagged_blocks_refunds_and_resolves(
    sim, shop
):
    response = create(shop.client, party=REFUND_FAILS_MSISDN)
    payment = Payment.objects.get(pk=response.json()["id"])
    drive(payment)
    assert payment.status == "SUCCESSFUL"
    first = post_refund(shop, payment, {}, "refund-1")
    assert first.status_code == 201, first.content
    refund = Refund.objects.get(pk=first.json()["id"])
    drive(refund)
    assert refund.status == "FAILED"
    before = available(shop)

    # MTN changes its mind: the refund was paid after all.
    mtn_changes_mind(sim, refund, status="SUCCESSFUL")
    out = io.StringIO()
    with pytest.raises(CommandError) as exited:
        call_command("reconcile", "--since", "2000-01-01T00:00:00Z", stdout=out)

    assert exited.value.returncode == 1
    assert f"DISAGREES: refund {refund.pk}" in out.getvalue()
    assert "wallet default collection EUR: MTN 1000000" in out.getvalue()
    refund.refresh_from_db()
    assert (refund.status, refund.needs_review) == ("FAILED", True)
    assert available(shop) == before  # nothing applied silently
    assert MerchantDelivery.objects.filter(event_type="refund.needs_review").count() == 1
    # Paying it back twice is refused while it is under review, and nothing is created.
    second = post_refund(shop, payment, {}, "refund-2")
    assert second.status_code == 422, second.content
    assert second.json()["error"]["code"] == "payment_under_review"
    assert Refund.objects.count() == 1
    assert available(shop) == before

    resolved = io.StringIO()
    call_command(
        "transfer_resolve", str(refund.pk), "--accept-mtn", "--reason", "MTN paid", stdout=resolved
    )

    refund.refresh_from_db()
    assert (refund.status, refund.needs_review) == ("SUCCESSFUL", False)
    assert available(shop) == before - Decimal("12.50")
    assert Payment.objects.get(pk=payment.pk).amount_refunded == Decimal("12.50")
    corrected = MerchantDelivery.objects.get(event_type="refund.succeeded")
    assert corrected.payload["data"]["corrected"] is True
    statement = shop.client.get("/api/v1/balance/transactions?type=correction").json()
    assert [(row["type"], row["net"], row["source"]["id"]) for row in statement["results"]] == [
        ("correction", "-12.50", str(refund.pk))
    ]
    csv = shop.client.get("/api/v1/balance/transactions?format=csv&type=correction")
    text = b"".join(csv.streaming_content).decode()
    assert f",correction,EUR,-12.50,0.00,-12.50,refund,{refund.pk}," in text
    assert ledger_verify() == []
    # Now fully refunded: a further refund exceeds the payment.
    third = post_refund(shop, payment, {}, "refund-3")
    assert third.json()["error"]["code"] == "refund_exceeds_payment"
    # The next reconciliation agrees with MTN.
    call_command("reconcile", "--since", "2000-01-01T00:00:00Z", stdout=io.StringIO())


def test_mtn_successful_without_an_amount_is_flagged_and_not_applied(sim, shop):
    response = create(shop.client)
    payment = Payment.objects.get(pk=response.json()["id"])
    submitted_only(payment)

    mtn_changes_mind(sim, payment, status="SUCCESSFUL", amount=None)
    make_due(payment)
    Worker().drain()

    payment.refresh_from_db()
    assert (payment.status, payment.needs_review) == ("PENDING", True)
    assert "amount" not in payment.mtn_claim
    assert available(shop) == Decimal("100000")  # nothing credited
    detail = shop.client.get(f"/api/v1/payments/{payment.pk}").json()
    assert detail["status"] == "PENDING"
    assert MerchantDelivery.objects.filter(event_type="payment.needs_review").count() == 1
    assert not MerchantDelivery.objects.filter(event_type="payment.succeeded").exists()


def test_the_fee_is_the_one_in_force_when_the_payment_was_created(sim, shop):
    shop.tenant.collection_fee_percent = Decimal("1.00")
    shop.tenant.save(update_fields=["collection_fee_percent"])
    response = create(shop.client, amount="100.00")
    payment = Payment.objects.get(pk=response.json()["id"])
    shop.tenant.collection_fee_percent = Decimal("10.00")  # raised while it is pending
    shop.tenant.save(update_fields=["collection_fee_percent"])

    drive(payment)

    assert payment.status == "SUCCESSFUL"
    assert available(shop) == Decimal("100000") + Decimal("99.00")
    statement = shop.client.get("/api/v1/balance/transactions?type=payment").json()
    assert statement["results"][0]["fee"] == "1.00"


def test_a_payout_mtn_fails_after_success_is_found_by_reconcile_and_given_back(sim, shop):
    response = create(shop.client, kind="payout")
    payout_id = response.json()["id"]
    payout = Payout.objects.get(pk=payout_id)
    drive(payout)
    assert payout.status == "SUCCESSFUL"
    before = available(shop)

    mtn_changes_mind(sim, payout, status="FAILED", reason="PAYEE_NOT_FOUND")
    with pytest.raises(CommandError):
        call_command("reconcile", "--since", "2000-01-01T00:00:00Z", stdout=io.StringIO())
    call_command(
        "transfer_resolve", payout_id, "--accept-mtn", "--reason", "x", stdout=io.StringIO()
    )

    payout.refresh_from_db()
    assert (payout.status, payout.failure_code) == ("FAILED", "PAYEE_NOT_FOUND")
    assert available(shop) == before + Decimal("12.50")
    assert ledger_verify() == []


def test_the_daily_run_covers_yesterday_once_and_wallets_show_their_change(sim, shop, settings):
    from datetime import UTC, datetime

    from payments.models import ReconcileRun
    from payments.services.reconcile import reconcile_daily

    settings.RECONCILE_HOUR = 2
    response = create(shop.client)
    payment = Payment.objects.get(pk=response.json()["id"])
    drive(payment)
    Payment.objects.filter(pk=payment.pk).update(
        finalized_at=datetime(2026, 12, 5, 13, 0, tzinfo=UTC)
    )

    assert reconcile_daily(now=datetime(2026, 12, 6, 1, 59, tzinfo=UTC)) is None  # not yet
    run = reconcile_daily(now=datetime(2026, 12, 6, 2, 0, tzinfo=UTC))
    again = reconcile_daily(now=datetime(2026, 12, 6, 9, 0, tzinfo=UTC))

    assert run is not None
    assert again is None  # one run per day, whichever worker comes first
    assert (str(run.daily_for), run.checked, run.disagreements) == ("2026-12-05", 1, 0)
    assert {(w["account"], w["product"]) for w in run.wallets} == {
        ("default", "collection"),
        ("default", "disbursement"),
    }
    out = io.StringIO()
    call_command("reconcile", "--since", "2026-12-06T00:00:00Z", stdout=out)
    assert "since the last run: MTN +0, ledger +0" in out.getvalue()
    assert ReconcileRun.objects.count() == 2
