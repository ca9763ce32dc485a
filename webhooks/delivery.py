"""Delivering merchant webhooks: Standard Webhooks signatures, Svix-like retries, history.

Every attempt carries the same ``webhook-id`` and a fresh timestamp and signature, and is
recorded (time, status code, a bit of the response, error) for support staff.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from typing import Any

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from gateway import metrics
from gateway.audit import Actor, audit_record
from webhooks.models import DeliveryAttempt, MerchantDelivery
from webhooks.signing import outbound_signature
from webhooks.targets import UnsafeTarget, connection_refused, post_pinned, resolve_target

logger = logging.getLogger(__name__)

# After the first attempt fails, retry this long after each failure (Svix's schedule).
RETRY_DELAYS = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
CONNECT_TIMEOUT = 3.05
# A host answering several addresses (IPv6 and IPv4, say) is tried at this many of them when
# a connection cannot be made, as a client library would (all of them checked first).
MAX_ADDRESSES_TRIED = 3
READ_TIMEOUT = 10.0
EXCERPT_LENGTH = 500
USER_AGENT = "momo-gateway-webhooks/1"

_session_holder: dict[str, requests.Session] = {}


class NoWebhookUrl(Exception):
    """A manual redelivery for a tenant with no webhook URL: there is nowhere to send it."""


def _session() -> requests.Session:
    session = _session_holder.get("session")
    if session is None:
        session = _session_holder["session"] = requests.Session()
    return session


def post_event(url: str, *, data: bytes, headers: dict[str, str]) -> requests.Response:
    """POST one attempt: to the address that was checked, never following a redirect.

    The name is resolved once and every address checked (``webhooks.targets``), then the
    connection goes to a checked address (the next one only when none could be made), so a
    DNS answer that changes in between (rebinding) cannot reach an internal service. Raises
    ``UnsafeTarget`` for a refused target. With ``WEBHOOK_ALLOW_PRIVATE_TARGETS``
    (development, tests) any address is called as is.
    """
    timeout = (CONNECT_TIMEOUT, READ_TIMEOUT)
    if settings.WEBHOOK_ALLOW_PRIVATE_TARGETS:
        return _session().post(
            url, data=data, headers=headers, timeout=timeout, allow_redirects=False
        )
    addresses = resolve_target(url)[:MAX_ADDRESSES_TRIED]
    for address in addresses[:-1]:
        try:
            return post_pinned(url, address, data=data, headers=headers, timeout=timeout)
        except requests.RequestException as exc:
            if not connection_refused(exc):
                raise  # sent, or may have been: the attempt ends here
    return post_pinned(url, addresses[-1], data=data, headers=headers, timeout=timeout)


def _active_secrets(tenant: Any) -> list[str]:
    secrets = [tenant.webhook_secret]
    expires = tenant.previous_webhook_secret_expires_at
    if tenant.previous_webhook_secret and expires and expires > timezone.now():
        secrets.append(tenant.previous_webhook_secret)
    return secrets


def signed_request(delivery: MerchantDelivery) -> tuple[bytes, dict[str, str]]:
    """The body bytes and headers of one attempt, signed now."""
    body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False)
    now = timezone.now()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": delivery.event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": outbound_signature(
            secrets=_active_secrets(delivery.tenant),
            msg_id=delivery.event_id,
            timestamp=now,
            body=body,
        ),
    }
    return body.encode("utf-8"), headers


def delivery_attempt(
    *, delivery: MerchantDelivery, triggered_by: str = "schedule"
) -> MerchantDelivery:
    """Make one attempt now and record it; schedule the next one or settle the delivery.

    No lock is held during the HTTP call; the outcome is written in one short transaction.
    """
    delivery = MerchantDelivery.objects.select_related("tenant").get(pk=delivery.pk)
    # Always the tenant's current URL: a merchant that moved or removed it is not called.
    url = delivery.tenant.webhook_url
    started = time.monotonic()
    attempted_at = timezone.now()
    status_code: int | None = None
    excerpt = ""
    error = ""
    try:
        if not url:
            raise UnsafeTarget("The tenant has no webhook URL.")
        body, headers = signed_request(delivery)
        response = post_event(url, data=body, headers=headers)
        status_code = response.status_code
        excerpt = response.text[:EXCERPT_LENGTH]
    except UnsafeTarget as exc:
        error = str(exc)
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {exc}"[:EXCERPT_LENGTH]
    succeeded = status_code is not None and 200 <= status_code < 300
    duration_ms = int((time.monotonic() - started) * 1000)
    return _record_attempt(
        delivery=delivery,
        url=url,
        attempted_at=attempted_at,
        status_code=status_code,
        succeeded=succeeded,
        duration_ms=duration_ms,
        excerpt=excerpt,
        error=error,
        triggered_by=triggered_by,
    )


def _record_attempt(
    *,
    delivery: MerchantDelivery,
    url: str,
    attempted_at: Any,
    status_code: int | None,
    succeeded: bool,
    duration_ms: int,
    excerpt: str,
    error: str,
    triggered_by: str,
) -> MerchantDelivery:
    metrics.delivery_attempted(
        status_code=status_code, succeeded=succeeded, duration_ms=duration_ms
    )
    now = timezone.now()
    with transaction.atomic():
        locked = MerchantDelivery.objects.select_for_update().get(pk=delivery.pk)
        DeliveryAttempt.objects.create(
            delivery=locked,
            attempted_at=attempted_at,
            status_code=status_code,
            succeeded=succeeded,
            duration_ms=duration_ms,
            response_excerpt=excerpt,
            error=error,
            triggered_by=triggered_by,
        )
        locked.attempt_count += 1
        locked.url = url
        locked.last_status_code = status_code
        locked.last_error = error or ("" if succeeded else f"HTTP {status_code}")
        if succeeded:
            locked.state = MerchantDelivery.State.SUCCEEDED
            locked.delivered_at = now
            locked.next_attempt_at = None
        elif triggered_by == "schedule" and locked.state != MerchantDelivery.State.SUCCEEDED:
            # (A manual redelivery that fails leaves the automatic schedule as it was, and a
            # delivery that a redelivery completed meanwhile stays delivered.)
            retries_done = locked.attempt_count - 1  # the first attempt is not a retry
            if retries_done < len(RETRY_DELAYS):
                locked.state = MerchantDelivery.State.PENDING
                locked.next_attempt_at = now + RETRY_DELAYS[retries_done]
            else:
                locked.state = MerchantDelivery.State.FAILED
                locked.next_attempt_at = None
        locked.save()
    log = logger.info if succeeded else logger.warning
    log(
        "webhook %s %s attempt %d: %s",
        locked.event_id,
        locked.event_type,
        locked.attempt_count,
        status_code or error,
    )
    return locked


def delivery_redeliver(*, delivery: MerchantDelivery, actor: Actor) -> MerchantDelivery:
    """Support's "redeliver": one attempt now, same ``webhook-id``, recorded and audited.

    Raises ``NoWebhookUrl`` (recording nothing) when the tenant has no webhook URL: a
    redelivery to nowhere is not an attempt.
    """
    current = MerchantDelivery.objects.select_related("tenant").get(pk=delivery.pk)
    if not current.tenant.webhook_url:
        raise NoWebhookUrl(f"The tenant {current.tenant.slug} has no webhook URL.")
    result = delivery_attempt(delivery=current, triggered_by=f"{actor.type}:{actor.id}")
    audit_record(
        tenant=result.tenant,
        object_type=result.object_type,
        object_id=result.object_id,
        action="webhook.redelivered",
        actor=actor,
        data={
            "event_id": result.event_id,
            "status_code": result.last_status_code,
            "succeeded": result.state == MerchantDelivery.State.SUCCEEDED,
        },
    )
    return result
