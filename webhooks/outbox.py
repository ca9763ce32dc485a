"""Writing merchant webhook events into the outbox.

Called by the payments services inside the transaction that makes a status final. It
imports nothing from ``payments`` (payments calls it), so the dependency stays one-way.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.utils import timezone

from gateway.sql import dispatcher_wake
from webhooks.models import MerchantDelivery


def new_event_id() -> str:
    return "evt_" + secrets.token_hex(16)


def outbox_enqueue(
    *,
    tenant: Any,
    event_type: str,
    object_type: str,
    object_id: Any,
    data: dict[str, Any],
    review: bool = False,
) -> MerchantDelivery:
    """Store one event for the tenant's webhook URL, due now; the worker delivers it.

    ``review``: an event of When MTN disagrees, which may repeat for an object (see
    ``MerchantDelivery.review``); any other is stored once per object and type."""
    now = timezone.now()
    event_id = new_event_id()
    payload = {
        "id": event_id,
        "type": event_type,
        "created_at": now.isoformat().replace("+00:00", "Z"),
        "data": data,
    }
    url = tenant.webhook_url or ""
    if url:
        dispatcher_wake()  # delivered at the commit of the final state: the worker sends it
    return MerchantDelivery.objects.create(
        event_id=event_id,
        tenant=tenant,
        event_type=event_type,
        object_type=object_type,
        object_id=object_id,
        payload=payload,
        review=review,
        url=url,
        state=MerchantDelivery.State.PENDING if url else MerchantDelivery.State.NO_ENDPOINT,
        next_attempt_at=now if url else None,
    )
