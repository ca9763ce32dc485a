"""Merchant webhooks: the outbox row, Standard Webhooks signatures, retries, attempts, redelivery.

The merchant's endpoint is mocked with ``responses``; signatures are checked with the
reference ``standardwebhooks`` library, not with our own code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
import requests
import responses
from django.utils import timezone
from standardwebhooks import Webhook

from gateway.audit import Actor
from gateway.models import AuditEvent
from payments.services import transfer_transition
from shell.worker import Worker
from tenants.services import tenant_rotate_webhook_secret
from webhooks.delivery import RETRY_DELAYS, delivery_attempt, delivery_redeliver
from webhooks.models import DeliveryAttempt, MerchantDelivery
from webhooks.signing import outbound_signature

from .conftest import submitted

HOOK_URL = "https://alice.example.com/hooks"  # the `alice` tenant's webhook URL
PUBLIC_IP = "93.184.216.34"


@pytest.fixture
def resolver(monkeypatch) -> dict[str, str]:
    """DNS for the delivery code: host -> address (unknown hosts do not resolve)."""
    table = {"alice.example.com": PUBLIC_IP}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in table:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (table[host], port or 443))]
        if host.replace(".", "").isdigit() or ":" in host or host == "localhost":
            return real(host, port, *args, **kwargs)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr("webhooks.targets.socket.getaddrinfo", getaddrinfo)
    return table


@pytest.fixture
def merchant(settings, resolver) -> Iterator[responses.RequestsMock]:
    """The merchant's endpoint, behind the SSRF check (private targets refused)."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def succeed(transfer):
    return transfer_transition(
        transfer=transfer,
        target="SUCCESSFUL",
        actor=Actor.mtn(),
        financial_transaction_id="555",
    ).transfer


def sent(mock: responses.RequestsMock) -> list:
    return [call for call in mock.calls if call.request.url == HOOK_URL]


def headers_of(call) -> dict[str, str]:
    return dict(call.request.headers)


def reference_signature(secret: str, call) -> str:
    """What the reference library signs for this attempt's id, timestamp and body."""
    h = headers_of(call)
    moment = datetime.fromtimestamp(int(h["webhook-timestamp"]), tz=UTC)
    return Webhook(secret).sign(h["webhook-id"], moment, call.request.body.decode())


class Clock:
    """Stands in for ``django.utils.timezone`` inside ``webhooks.delivery``."""

    def __init__(self) -> None:
        self.moment = timezone.now()

    def now(self) -> datetime:
        return self.moment


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr("webhooks.delivery.timezone", SimpleNamespace(now=fake.now))
    return fake


# --- the outbox -------------------------------------------------------------------------------


def test_final_state_writes_one_delivery_due_now(tenant):
    payment = succeed(submitted(tenant))

    delivery = MerchantDelivery.objects.get()
    assert delivery.tenant == tenant
    assert (delivery.object_type, delivery.object_id) == ("payment", payment.pk)
    assert delivery.event_type == "payment.succeeded"
    assert delivery.state == MerchantDelivery.State.PENDING
    assert delivery.next_attempt_at <= timezone.now()
    assert delivery.url == HOOK_URL
    assert delivery.event_id.startswith("evt_")
    assert set(delivery.payload) == {"id", "type", "created_at", "data"}
    assert delivery.payload["id"] == delivery.event_id


def test_tenant_without_webhook_url_gets_no_endpoint_and_no_request(bob, merchant):
    succeed(submitted(bob.tenant))

    delivery = MerchantDelivery.objects.get()
    assert delivery.state == MerchantDelivery.State.NO_ENDPOINT
    assert delivery.next_attempt_at is None
    assert Worker().run_once() == {}
    assert len(merchant.calls) == 0
    assert DeliveryAttempt.objects.count() == 0


# --- one delivery ---------------------------------------------------------------------------


def test_worker_delivers_a_signed_event_the_reference_library_verifies(
    tenant, api_client, merchant
):
    merchant.post(HOOK_URL, status=200, body="thanks")
    payment = succeed(submitted(tenant))

    done = Worker().run_once()

    assert done == {"webhook.delivered_succeeded": 1}
    (call,) = sent(merchant)
    headers = headers_of(call)
    tenant.refresh_from_db()
    event = Webhook(tenant.webhook_secret).verify(call.request.body, headers)
    delivery = MerchantDelivery.objects.get()
    assert headers["webhook-id"] == delivery.event_id
    assert abs(int(headers["webhook-timestamp"]) - timezone.now().timestamp()) < 5
    assert headers["webhook-signature"].startswith("v1,")
    assert len(headers["webhook-signature"].split(" ")) == 1
    assert headers["Content-Type"] == "application/json"
    assert set(event) == {"id", "type", "created_at", "data"}
    assert event["id"] == delivery.event_id
    assert event["type"] == "payment.succeeded"
    assert datetime.fromisoformat(event["created_at"].replace("Z", "+00:00"))
    assert event["data"] == api_client.get(f"/api/v1/payments/{payment.pk}").json()
    assert delivery.state == MerchantDelivery.State.SUCCEEDED
    assert delivery.delivered_at is not None
    assert delivery.next_attempt_at is None
    attempt = DeliveryAttempt.objects.get()
    assert (attempt.status_code, attempt.succeeded, attempt.response_excerpt, attempt.error) == (
        200,
        True,
        "thanks",
        "",
    )
    assert Worker().run_once() == {}  # delivered: never sent again
    assert len(sent(merchant)) == 1


def test_payout_and_failure_events_carry_their_type(tenant, merchant):
    merchant.post(HOOK_URL, status=204)
    payout = submitted(tenant, kind="payout")
    transfer_transition(
        transfer=payout,
        target="FAILED",
        actor=Actor.mtn(),
        failure_code="PAYEE_NOT_FOUND",
        failure_message="No such payee.",
    )

    Worker().run_once()

    (call,) = sent(merchant)
    event = Webhook(tenant.webhook_secret).verify(call.request.body, headers_of(call))
    assert event["type"] == "payout.failed"
    assert event["data"]["payee"] == payout.payee
    assert event["data"]["failure_reason"] == {
        "code": "PAYEE_NOT_FOUND",
        "message": "No such payee.",
    }
    assert MerchantDelivery.objects.get().state == MerchantDelivery.State.SUCCEEDED


def test_known_test_vector_matches_outbound_signature():
    secret = "whsec_AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
    body = '{"type":"payment.succeeded","data":{"id":"pay_1"}}'
    moment = datetime(2024, 1, 1, tzinfo=UTC)

    signature = outbound_signature(
        secrets=[secret], msg_id="msg_test_1", timestamp=moment, body=body
    )

    assert signature == "v1,6N+UWt1fmk1ln/Ps0icngVA2Drkbu82ZJ25tRozCyKo="
    manual = hmac.new(b"\x01" * 32, f"msg_test_1.1704067200.{body}".encode(), hashlib.sha256)
    assert signature == "v1," + base64.b64encode(manual.digest()).decode()


# --- retries --------------------------------------------------------------------------------


def test_failed_attempts_follow_the_schedule_then_give_up(tenant, merchant, clock):
    failures = [
        {"status": 500, "body": "boom"},
        {"body": requests.exceptions.ReadTimeout("read timed out")},
        {"status": 503, "body": "busy"},
        {"body": requests.exceptions.ConnectTimeout("connect timed out")},
        {"status": 302, "headers": {"Location": "https://elsewhere.example.com/"}},
        {"status": 404, "body": "no such hook"},
        {"body": requests.exceptions.ConnectionError("reset")},
        {"status": 500, "body": "x" * 2000},
    ]
    for failure in failures:
        merchant.post(HOOK_URL, **failure)
    succeed(submitted(tenant))
    delivery = MerchantDelivery.objects.get()
    gaps = []

    for _ in failures:
        delivery = delivery_attempt(delivery=delivery)
        if delivery.next_attempt_at is not None:
            gaps.append(delivery.next_attempt_at - clock.moment)
            clock.moment = delivery.next_attempt_at

    assert gaps == list(RETRY_DELAYS)
    assert gaps == [
        timedelta(seconds=5),
        timedelta(minutes=5),
        timedelta(minutes=30),
        timedelta(hours=2),
        timedelta(hours=5),
        timedelta(hours=10),
        timedelta(hours=10),
    ]
    delivery.refresh_from_db()
    assert delivery.state == MerchantDelivery.State.FAILED
    assert delivery.next_attempt_at is None
    assert delivery.attempt_count == 8
    calls = sent(merchant)
    assert len(calls) == 8
    # One webhook-id throughout; each attempt timestamped and signed afresh.
    assert {headers_of(c)["webhook-id"] for c in calls} == {delivery.event_id}
    assert len({headers_of(c)["webhook-timestamp"] for c in calls}) == 8
    assert len({headers_of(c)["webhook-signature"] for c in calls}) == 8
    tenant.refresh_from_db()
    for call in calls:
        assert headers_of(call)["webhook-signature"] == reference_signature(
            tenant.webhook_secret, call
        )
    # Every attempt is recorded for support.
    attempts = list(DeliveryAttempt.objects.filter(delivery=delivery))
    assert [a.status_code for a in attempts] == [500, None, 503, None, 302, 404, None, 500]
    assert not any(a.succeeded for a in attempts)
    assert attempts[0].response_excerpt == "boom"
    assert "ReadTimeout" in attempts[1].error
    assert "ConnectTimeout" in attempts[3].error
    assert "ConnectionError" in attempts[6].error
    assert len(attempts[7].response_excerpt) == 500
    assert all(a.triggered_by == "schedule" for a in attempts)
    # The redirect was not followed.
    assert not [c for c in merchant.calls if "elsewhere" in c.request.url]


def test_worker_retries_a_failed_delivery_and_succeeds(tenant, merchant):
    merchant.post(HOOK_URL, status=500)
    merchant.post(HOOK_URL, status=200)
    succeed(submitted(tenant))

    assert Worker().run_once() == {"webhook.delivered_pending": 1}
    delivery = MerchantDelivery.objects.get()
    assert delivery.last_status_code == 500
    assert delivery.next_attempt_at - timezone.now() <= timedelta(seconds=5)
    assert Worker().run_once() == {}  # not due yet: no request
    assert len(sent(merchant)) == 1

    MerchantDelivery.objects.update(next_attempt_at=timezone.now())
    assert Worker().run_once() == {"webhook.delivered_succeeded": 1}

    calls = sent(merchant)
    assert len(calls) == 2
    assert headers_of(calls[0])["webhook-id"] == headers_of(calls[1])["webhook-id"]
    assert calls[0].request.body == calls[1].request.body
    tenant.refresh_from_db()
    for call in calls:
        Webhook(tenant.webhook_secret).verify(call.request.body, headers_of(call))
    assert MerchantDelivery.objects.get().state == MerchantDelivery.State.SUCCEEDED
    assert DeliveryAttempt.objects.count() == 2


# --- secrets ---------------------------------------------------------------------------------


def test_rotated_secret_signs_with_both_and_both_verify(tenant, merchant):
    merchant.post(HOOK_URL, status=200)
    old_secret = tenant.webhook_secret
    rotated = tenant_rotate_webhook_secret(tenant=tenant, actor=Actor.staff("support"))
    assert rotated.webhook_secret != old_secret
    succeed(submitted(rotated))

    Worker().run_once()

    (call,) = sent(merchant)
    headers = headers_of(call)
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(rotated.webhook_secret).verify(call.request.body, headers)
    Webhook(old_secret).verify(call.request.body, headers)


def test_old_secret_stops_signing_after_the_grace_period(tenant, merchant):
    merchant.post(HOOK_URL, status=200)
    old_secret = tenant.webhook_secret
    rotated = tenant_rotate_webhook_secret(
        tenant=tenant, actor=Actor.system(), grace=timedelta(seconds=-1)
    )
    succeed(submitted(rotated))

    Worker().run_once()

    (call,) = sent(merchant)
    headers = headers_of(call)
    assert len(headers["webhook-signature"].split(" ")) == 1
    Webhook(rotated.webhook_secret).verify(call.request.body, headers)
    with pytest.raises(Exception):  # noqa: B017, PT011 - the library raises several types
        Webhook(old_secret).verify(call.request.body, headers)


# --- redelivery -----------------------------------------------------------------------------


def test_redelivery_sends_the_same_webhook_id_and_is_audited(tenant, merchant):
    merchant.post(HOOK_URL, status=200)
    succeed(submitted(tenant))
    Worker().run_once()
    delivery = MerchantDelivery.objects.get()

    redelivered = delivery_redeliver(delivery=delivery, actor=Actor.staff("support"))

    calls = sent(merchant)
    assert len(calls) == 2
    assert headers_of(calls[1])["webhook-id"] == delivery.event_id
    assert calls[1].request.body == calls[0].request.body
    tenant.refresh_from_db()
    Webhook(tenant.webhook_secret).verify(calls[1].request.body, headers_of(calls[1]))
    assert redelivered.state == MerchantDelivery.State.SUCCEEDED
    assert redelivered.attempt_count == 2
    last = DeliveryAttempt.objects.latest("attempted_at")
    assert last.triggered_by == "staff:support"
    event = AuditEvent.objects.get(action="webhook.redelivered")
    assert event.actor_type == "staff"
    assert event.actor_id == "support"
    assert event.data["event_id"] == delivery.event_id
    assert event.data["succeeded"] is True


def test_failed_redelivery_leaves_the_schedule_alone(tenant, merchant):
    merchant.post(HOOK_URL, status=500)
    succeed(submitted(tenant))
    Worker().run_once()
    before = MerchantDelivery.objects.get()

    after = delivery_redeliver(delivery=before, actor=Actor.staff("support"))

    assert after.state == MerchantDelivery.State.PENDING
    assert after.next_attempt_at == before.next_attempt_at
    assert after.attempt_count == 2
    assert AuditEvent.objects.get(action="webhook.redelivered").data["succeeded"] is False


def test_redelivery_of_a_failed_delivery_can_succeed(tenant, merchant):
    merchant.post(HOOK_URL, status=200)
    succeed(submitted(tenant))
    MerchantDelivery.objects.update(
        state=MerchantDelivery.State.FAILED, next_attempt_at=None, attempt_count=8
    )

    after = delivery_redeliver(delivery=MerchantDelivery.objects.get(), actor=Actor.staff("s"))

    assert after.state == MerchantDelivery.State.SUCCEEDED
    assert len(sent(merchant)) == 1


# --- SSRF -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://internal.example.com/hooks",  # resolves to 127.0.0.1 (see below)
        "http://127.0.0.1:8000/hooks",
        "http://localhost/hooks",
        "http://10.1.2.3/hooks",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hooks",
        "https://nowhere.invalid/hooks",  # does not resolve
        "ftp://alice.example.com/hooks",
    ],
)
def test_private_or_unresolvable_target_is_refused_without_a_request(
    tenant, merchant, resolver, url
):
    resolver["internal.example.com"] = "127.0.0.1"
    tenant.webhook_url = url
    tenant.save(update_fields=["webhook_url"])
    if url.startswith("http"):
        merchant.post(url, status=200)
    succeed(submitted(tenant))

    Worker().run_once()

    assert len(merchant.calls) == 0
    attempt = DeliveryAttempt.objects.get()
    assert attempt.status_code is None
    assert attempt.succeeded is False
    assert attempt.error
    delivery = MerchantDelivery.objects.get()
    assert delivery.state == MerchantDelivery.State.PENDING
    assert delivery.last_error == attempt.error


def test_private_targets_are_allowed_when_configured(tenant, merchant, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    url = "http://127.0.0.1:8000/hooks"
    tenant.webhook_url = url
    tenant.save(update_fields=["webhook_url"])
    merchant.post(url, status=200)
    succeed(submitted(tenant))

    Worker().run_once()

    assert len(merchant.calls) == 1
    assert MerchantDelivery.objects.get().state == MerchantDelivery.State.SUCCEEDED


def test_body_bytes_are_exactly_what_was_signed(tenant, merchant):
    merchant.post(HOOK_URL, status=200)
    payment = submitted(tenant)
    payment.description = "Café — ünïcode"
    payment.save(update_fields=["description"])
    succeed(payment)

    Worker().run_once()

    (call,) = sent(merchant)
    tenant.refresh_from_db()
    event = Webhook(tenant.webhook_secret).verify(call.request.body, headers_of(call))
    assert event["data"]["description"] == "Café — ünïcode"
    assert json.loads(call.request.body) == event


def test_scheduled_attempt_failing_after_a_successful_redelivery_keeps_it_delivered(
    tenant, merchant
):
    succeed(submitted(tenant))
    delivery = MerchantDelivery.objects.get()
    answers = iter([500, 200])  # the worker's attempt fails; support's, made meanwhile, works

    def endpoint(request):
        status = next(answers)
        if status == 500:
            # While the worker's request is in flight, support redelivers successfully.
            delivery_redeliver(delivery=delivery, actor=Actor.staff("support"))
        return (status, {}, "")

    merchant.add_callback(responses.POST, HOOK_URL, callback=endpoint)

    result = delivery_attempt(delivery=delivery)

    assert result.state == MerchantDelivery.State.SUCCEEDED
    assert result.next_attempt_at is None
    assert result.delivered_at is not None
    assert DeliveryAttempt.objects.count() == 2
    assert Worker().run_once() == {}
    assert len(sent(merchant)) == 2
