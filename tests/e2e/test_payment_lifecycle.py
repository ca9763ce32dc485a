"""A payment's (and a payout's) life end to end: API -> real MTN client -> simulator -> worker.

Issue 3: submission, the worker's retries and polling, and what MTN's faults do to them.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks import Webhook

from gateway.models import AuditEvent
from payments.models import Payment, Payout
from payments.representation import transfer_representation
from payments.states import Submission
from shell.worker import Worker
from webhooks.models import MerchantDelivery, MtnCallback

from .conftest import create, make_due, wait_until

pytestmark = pytest.mark.e2e

MODELS = {"payment": Payment, "payout": Payout}
MTN_PATHS = {"payment": "/collection/v1_0/requesttopay", "payout": "/disbursement/v1_0/transfer"}


def mtn_requests(sim, method: str, kind: str = "payment") -> int:
    return sim.state.request_count(method, MTN_PATHS[kind])


def created(response, kind: str = "payment"):
    assert response.status_code == 201, response.content
    return MODELS[kind].objects.get(pk=response.json()["id"])


# --- the happy path ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["payment", "payout"])
def test_success_end_to_end_through_the_callback(sim_with_callbacks, shop, merchant, kind):
    sim = sim_with_callbacks

    response = create(shop.client, kind=kind)

    assert response.json()["status"] == "PENDING"
    transfer = created(response, kind)
    reached = wait_until(
        lambda: MODELS[kind].objects.get(pk=transfer.pk).status == "SUCCESSFUL", timeout=10
    )
    assert reached, MtnCallback.objects.values_list("outcome", "outcome_detail")
    shown = shop.client.get(f"/api/v1/{kind}s/{transfer.pk}").json()
    assert shown["status"] == "SUCCESSFUL"
    assert shown["failure_reason"] is None
    transfer.refresh_from_db()
    assert transfer.submission == Submission.SUBMITTED
    assert transfer.mtn_financial_transaction_id
    assert transfer.next_attempt_at is None
    callback = MtnCallback.objects.get()
    assert callback.door == MtnCallback.Door.TOKEN
    assert callback.outcome == MtnCallback.Outcome.APPLIED
    assert callback.confirmed_status == "SUCCESSFUL"
    assert sim.state.post_count(transfer.mtn_reference_id) == 1
    # Happy path cost with callbacks: one POST, one status GET (the callback's confirmation).
    assert mtn_requests(sim, "POST", kind) == 1
    assert mtn_requests(sim, "GET", kind) == 1

    done = Worker().drain()

    assert done.get("webhook.delivered_succeeded") == 1
    assert len(merchant.received) == 1
    hook = merchant.received[0]
    event = Webhook(shop.tenant.webhook_secret).verify(hook.body, hook.headers)
    assert event["type"] == f"{kind}.succeeded"
    assert event["id"] == hook.headers["webhook-id"]
    assert event["data"]["id"] == str(transfer.pk)
    assert event["data"]["status"] == "SUCCESSFUL"
    assert set(event["data"]) == set(shown)
    delivery = MerchantDelivery.objects.get()
    assert delivery.state == MerchantDelivery.State.SUCCEEDED


@pytest.mark.parametrize("kind", ["payment", "payout"])
def test_success_end_to_end_by_polling(sim, shop, settings, kind):
    settings.MTN_STATUS_POLL_AFTER_SECONDS = 60

    response = create(shop.client, kind=kind)

    transfer = created(response, kind)
    assert transfer.status == "PENDING"
    assert transfer.submission == Submission.SUBMITTED
    # First poll MTN_STATUS_POLL_AFTER_SECONDS after submission.
    assert transfer.next_attempt_at - transfer.submitted_at == timedelta(seconds=60)
    assert Worker().run_once() == {}  # nothing due yet: no MTN call
    assert mtn_requests(sim, "GET", kind) == 0

    make_due(transfer)
    done = Worker().drain()

    assert done[f"{kind}.polled"] == 1
    transfer.refresh_from_db()
    assert transfer.status == "SUCCESSFUL"
    assert transfer.next_attempt_at is None
    assert shop.client.get(f"/api/v1/{kind}s/{transfer.pk}").json()["status"] == "SUCCESSFUL"
    # Happy path cost by polling: one POST, one status GET.
    assert mtn_requests(sim, "POST", kind) == 1
    assert mtn_requests(sim, "GET", kind) == 1
    assert MerchantDelivery.objects.filter(event_type=f"{kind}.succeeded").count() == 1


# --- MTN's sandbox failure numbers -----------------------------------------------------------


@pytest.mark.parametrize(
    ("msisdn", "code"),
    [
        ("46733123450", "INTERNAL_PROCESSING_ERROR"),
        ("46733123451", "APPROVAL_REJECTED"),
        ("46733123452", "EXPIRED"),
    ],
)
def test_sandbox_failure_number_fails_after_poll(sim, shop, msisdn, code):
    response = create(shop.client, party=msisdn)

    # MTN answers 202 first: the failure is only known from the status endpoint.
    assert response.json()["status"] == "PENDING"
    payment = created(response)
    make_due(payment)
    Worker().drain()

    shown = shop.client.get(f"/api/v1/payments/{payment.pk}").json()
    assert shown["status"] == "FAILED"
    assert shown["failure_reason"]["code"] == code
    assert shown["failure_reason"]["message"]
    assert sim.state.post_count(payment.mtn_reference_id) == 1
    delivery = MerchantDelivery.objects.get(object_id=payment.pk)
    assert delivery.event_type == "payment.failed"
    assert delivery.payload["data"]["failure_reason"]["code"] == code


@pytest.mark.parametrize(
    ("msisdn", "code"),
    [
        ("46733123450", "INTERNAL_PROCESSING_ERROR"),
        ("46733123451", "APPROVAL_REJECTED"),
        ("46733123452", "EXPIRED"),
    ],
)
def test_sandbox_failure_number_fails_through_the_callback(sim_with_callbacks, shop, msisdn, code):
    sim_with_callbacks.config.reason_as_object = True

    payment = created(create(shop.client, party=msisdn))

    assert wait_until(lambda: Payment.objects.get(pk=payment.pk).status == "FAILED", timeout=10)
    shown = shop.client.get(f"/api/v1/payments/{payment.pk}").json()
    assert shown["failure_reason"]["code"] == code
    assert shown["failure_reason"]["message"] != code  # the object's message was read


def test_payout_failure_number_fails_with_the_transfer_reason(sim, shop):
    payout = created(create(shop.client, kind="payout", party="46733123455"), "payout")

    make_due(payout)
    Worker().drain()

    shown = shop.client.get(f"/api/v1/payouts/{payout.pk}").json()
    assert shown["status"] == "FAILED"
    assert shown["failure_reason"]["code"] == "NOT_ENOUGH_FUNDS"
    assert mtn_requests(sim, "POST", "payout") == 1


def test_pending_forever_number_is_polled_with_growing_delays(sim, shop, settings):
    settings.MTN_STATUS_POLL_AFTER_SECONDS = 30
    payment = created(create(shop.client, party="46733123453"))
    assert payment.next_attempt_at - payment.submitted_at == timedelta(seconds=30)

    gaps = []
    for _ in range(6):
        make_due(payment)
        before = timezone.now()
        assert Worker().run_once() == {"payment.polled": 1}
        payment.refresh_from_db()
        assert payment.status == "PENDING"
        gaps.append(round((payment.next_attempt_at - before).total_seconds()))

    assert gaps == [5, 10, 20, 40, 60, 60]
    assert payment.poll_attempts == 6
    assert sim.state.transaction(payment.mtn_reference_id)["status_reads"] == 6

    # After ten minutes the gaps keep at most doubling, up to five minutes apart.
    late_gaps = []
    age = timedelta(minutes=10)
    for _ in range(4):
        Payment.objects.filter(pk=payment.pk).update(submitted_at=timezone.now() - age)
        make_due(payment)
        before = timezone.now()
        Worker().run_once()
        payment.refresh_from_db()
        gap = round((payment.next_attempt_at - before).total_seconds())
        late_gaps.append(gap)
        age += timedelta(seconds=gap)
    assert late_gaps == [120, 240, 300, 300]
    assert payment.status == "PENDING"
    assert MerchantDelivery.objects.count() == 0


# --- lost answers, outages and refusals --------------------------------------------------------


@pytest.mark.parametrize("kind", ["payment", "payout"])
def test_lost_response_then_409_submits_once_and_completes(sim, shop, settings, kind):
    settings.MTN_STATUS_POLL_AFTER_SECONDS = 0
    sim.set_faults(lose_next_posts=1)

    response = create(shop.client, kind=kind)

    assert response.json()["status"] == "PENDING"
    transfer = created(response, kind)
    assert transfer.submission == Submission.QUEUED
    assert transfer.last_error.startswith("NETWORK_ERROR")
    assert timezone.now() < transfer.next_attempt_at <= timezone.now() + timedelta(seconds=5)
    assert sim.state.post_count(transfer.mtn_reference_id) == 1  # it landed; the answer did not

    make_due(transfer)
    Worker().drain()

    transfer.refresh_from_db()
    assert transfer.status == "SUCCESSFUL"
    assert transfer.submission == Submission.SUBMITTED
    tx = sim.state.transaction(transfer.mtn_reference_id)
    assert tx["post_count"] == 1
    assert tx["conflict_count"] == 1  # the retry was told "already exists": success
    assert mtn_requests(sim, "POST", kind) == 2
    submitted = AuditEvent.objects.get(object_id=str(transfer.pk), action=f"{kind}.submitted")
    assert submitted.data["already_existed"] is True
    assert MerchantDelivery.objects.filter(object_id=transfer.pk).count() == 1


def test_lost_response_while_the_request_waits_is_pending_and_sent_once(sim, shop, settings):
    settings.MTN_STATUS_POLL_AFTER_SECONDS = 0
    sim.set_faults(lose_next_posts=1)

    response = create(shop.client, prefer="wait=5", submit=False)

    # One attempt per request: its answer was lost, so the outcome is unknown: PENDING.
    assert response.json()["status"] == "PENDING"
    assert response["Preference-Applied"] == "wait=5"
    payment = created(response)
    assert payment.submission == Submission.QUEUED
    assert payment.may_have_landed
    tx = sim.state.transaction(payment.mtn_reference_id)
    assert (tx["post_count"], tx["conflict_count"]) == (1, 0)
    make_due(payment)
    Worker().drain()
    payment.refresh_from_db()
    assert payment.status == "SUCCESSFUL"
    tx = sim.state.transaction(payment.mtn_reference_id)
    assert (tx["post_count"], tx["conflict_count"]) == (1, 1)  # the resend: "already exists"


@pytest.mark.parametrize("kind", ["payment", "payout"])
@pytest.mark.parametrize("outage", [{"down": True}, {"fail_next_posts": 1000}])
def test_mtn_down_at_create_is_submitted_once_by_the_worker(sim, shop, settings, kind, outage):
    settings.MTN_STATUS_POLL_AFTER_SECONDS = 0
    sim.set_faults(**outage)

    response = create(shop.client, kind=kind)

    assert response.status_code == 201
    assert response.json()["status"] == "PENDING"
    transfer = created(response, kind)
    assert transfer.submission == Submission.QUEUED
    assert sim.state.transaction(transfer.mtn_reference_id) is None
    assert transfer.next_attempt_at <= timezone.now() + timedelta(seconds=5)
    assert MerchantDelivery.objects.count() == 0

    # Still down: the worker's try fails too, and the next one is further away.
    make_due(transfer)
    Worker().drain()
    transfer.refresh_from_db()
    assert transfer.submission == Submission.QUEUED
    assert transfer.submit_attempts == 2
    assert transfer.next_attempt_at > timezone.now() + timedelta(seconds=5)

    sim.set_faults(down=False, fail_next_posts=0)
    make_due(transfer)
    Worker().drain()

    transfer.refresh_from_db()
    assert transfer.status == "SUCCESSFUL"
    tx = sim.state.transaction(transfer.mtn_reference_id)
    assert (tx["post_count"], tx["conflict_count"]) == (1, 0)
    assert MerchantDelivery.objects.filter(object_id=transfer.pk).count() == 1


@pytest.mark.parametrize("kind", ["payment", "payout"])
def test_permanent_rejection_fails_at_once_with_mtn_code(sim, shop, settings, kind):
    settings.MTN_TARGET_ENVIRONMENT = "mtnuganda"  # the simulator serves "sandbox"

    # With Prefer: wait the create answers with MTN's first answer, here a refusal.
    response = create(shop.client, kind=kind, prefer="wait=5", submit=False)

    assert response.status_code == 201
    assert response["Preference-Applied"] == "wait=5"
    body = response.json()
    assert body["status"] == "FAILED"
    assert body["failure_reason"]["code"] == "NOT_ALLOWED_TARGET_ENVIRONMENT"
    transfer = created(response, kind)
    assert transfer.submission == Submission.REJECTED
    assert transfer.next_attempt_at is None
    assert sim.state.all_transactions() == []
    assert MerchantDelivery.objects.get(object_id=transfer.pk).event_type == f"{kind}.failed"
    posts = mtn_requests(sim, "POST", kind)

    Worker().drain()  # a rejected payment is never sent again

    assert mtn_requests(sim, "POST", kind) == posts == 1


def test_final_payment_is_not_polled_again(sim, shop, settings):
    settings.MTN_STATUS_POLL_AFTER_SECONDS = 0
    payment = created(create(shop.client))
    Worker().drain()
    payment.refresh_from_db()
    assert payment.status == "SUCCESSFUL"
    reads = sim.state.transaction(payment.mtn_reference_id)["status_reads"]
    before = transfer_representation(payment)

    make_due(payment)  # even if a row claimed it by mistake, a final payment is left alone
    Worker().drain()

    payment.refresh_from_db()
    assert transfer_representation(payment) == before
    assert sim.state.transaction(payment.mtn_reference_id)["status_reads"] == reads
