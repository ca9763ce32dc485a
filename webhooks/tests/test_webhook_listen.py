"""`manage.py webhook_listen`: a local receiver that verifies each event and prints one line."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
import requests
from django.core.management import CommandError, call_command
from django.utils import timezone
from standardwebhooks import Webhook

from gateway.audit import Actor
from payments.services import transfer_transition
from tenants.services import tenant_rotate_webhook_secret, tenant_update
from webhooks.delivery import delivery_attempt
from webhooks.management.commands.webhook_listen import WebhookListener, tenant_secrets
from webhooks.models import MerchantDelivery

from .conftest import submitted

pytestmark = pytest.mark.django_db


class Lines(io.StringIO):
    def lines(self) -> list[str]:
        return self.getvalue().splitlines()


@pytest.fixture
def listener(alice) -> Iterator[tuple[WebhookListener, Lines]]:
    """Listening for alice, with her secrets as they are now (the server thread cannot see
    the test's uncommitted transaction, so the secrets are handed over, not read)."""
    out = Lines()
    secret = alice.tenant.webhook_secret
    server = WebhookListener(
        slug="alice", host="127.0.0.1", port=0, out=out, secrets_of=lambda slug: [secret]
    ).start()
    try:
        yield server, out
    finally:
        server.stop()


def signed(secret: str, payload: dict, msg_id: str = "evt_test") -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload)
    now = timezone.now()
    return body.encode(), {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body),
    }


def test_a_real_delivery_is_verified_answered_200_and_printed_on_one_line(
    alice, listener, settings
):
    server, out = listener
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    tenant_update(
        tenant=alice.tenant,
        changes={"webhook_url": server.url},
        previous={"webhook_url": alice.tenant.webhook_url},
        actor=Actor.system(),
    )
    payment = submitted(alice.tenant, amount="15.00", currency="EUR")
    transfer_transition(
        transfer=payment, target="FAILED", actor=Actor.mtn(), failure_code="APPROVAL_REJECTED"
    )
    delivery = MerchantDelivery.objects.get(event_type="payment.failed")

    result = delivery_attempt(delivery=delivery)

    assert result.attempts.get().status_code == 200
    (line,) = out.lines()
    assert "verified" in line
    assert "payment.failed" in line
    assert delivery.event_id in line
    assert f"{payment.pk} FAILED" in line
    assert "15.00 EUR" in line
    assert "APPROVAL_REJECTED: The payer declined the request on their phone." in line


def test_a_forged_signature_is_refused_and_reported(alice, bob, listener):
    server, out = listener
    body, headers = signed(bob.tenant.webhook_secret, {"id": "evt_1", "type": "payment.failed"})

    response = requests.post(server.url, data=body, headers=headers, timeout=5)

    assert response.status_code == 400
    (line,) = out.lines()
    assert line.startswith("REJECTED evt_test")
    assert "'alice'" in line
    assert "verified" not in line


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"webhook-id": "evt_x", "webhook-timestamp": "1", "webhook-signature": "v1,AAAA"},
        {"webhook-id": "evt_x", "webhook-timestamp": "nope", "webhook-signature": "garbage"},
    ],
    ids=["unsigned", "stale", "malformed"],
)
def test_unsigned_stale_or_malformed_deliveries_are_refused(listener, headers):
    server, out = listener

    response = requests.post(server.url, data=b"{}", headers=headers, timeout=5)

    assert response.status_code == 400
    assert len(out.lines()) == 1
    assert out.lines()[0].startswith("REJECTED")


def test_each_event_gets_its_own_line(alice, listener):
    server, out = listener
    for number in range(3):
        event = {
            "id": f"evt_{number}",
            "type": "payout.succeeded",
            "data": {"id": f"p{number}", "status": "SUCCESSFUL"},
        }
        body, headers = signed(alice.tenant.webhook_secret, event, msg_id=f"evt_{number}")
        assert requests.post(server.url, data=body, headers=headers, timeout=5).status_code == 200

    assert [line.split("  ")[3] for line in out.lines()] == ["evt_0", "evt_1", "evt_2"]


def test_a_get_is_not_an_event(listener):
    server, out = listener

    assert requests.get(server.url, timeout=5).status_code == 405
    assert out.lines() == []


def test_the_secrets_are_the_tenants_and_during_a_rotation_the_previous_one_too(alice):
    before = alice.tenant.webhook_secret
    assert tenant_secrets("alice") == [before]

    rotated = tenant_rotate_webhook_secret(tenant=alice.tenant, actor=Actor.system())

    assert tenant_secrets("alice") == [rotated.webhook_secret, before]
    type(rotated).objects.filter(pk=rotated.pk).update(
        previous_webhook_secret_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert tenant_secrets("alice") == [rotated.webhook_secret]
    assert tenant_secrets("nobody") == []


def test_the_command_refuses_an_unknown_tenant(db):
    with pytest.raises(CommandError, match="No tenant 'ghost'"):
        call_command("webhook_listen", "--tenant", "ghost", "--port", "0")
