"""A manual redelivery to a tenant with no webhook URL is refused, not counted as an attempt."""

from __future__ import annotations

import pytest

from gateway.audit import Actor
from gateway.models import AuditEvent
from payments.tests.admin.factories import make_payout_with_history
from webhooks.delivery import NoWebhookUrl, delivery_redeliver
from webhooks.models import DeliveryAttempt, MerchantDelivery


def test_redeliver_without_a_webhook_url_raises_and_changes_nothing(other_tenant):
    payout = make_payout_with_history(other_tenant)  # bob has no webhook URL
    delivery = MerchantDelivery.objects.get(object_id=payout.pk)
    before = MerchantDelivery.objects.filter(pk=delivery.pk).values().get()

    with pytest.raises(NoWebhookUrl, match="The tenant bob has no webhook URL."):
        delivery_redeliver(delivery=delivery, actor=Actor.staff("support"))

    assert MerchantDelivery.objects.filter(pk=delivery.pk).values().get() == before
    assert not DeliveryAttempt.objects.filter(delivery=delivery).exists()
    assert not AuditEvent.objects.filter(action="webhook.redelivered").exists()
