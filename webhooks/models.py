"""Inbound MTN callbacks as received, and outbound merchant webhook deliveries (the outbox)."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q


class MerchantDelivery(models.Model):
    """One merchant webhook event and its delivery to the tenant's URL.

    Written in the same transaction as the status change it announces (the outbox), so a
    final state without its event, or an event without its final state, cannot exist. The
    unique constraint makes "exactly one event per final state" structural.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Pending: due for an attempt"
        SUCCEEDED = "succeeded", "Delivered"
        FAILED = "failed", "Failed: every scheduled attempt failed"
        NO_ENDPOINT = "no_endpoint", "Not sent: the tenant has no webhook URL"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    event_id = models.CharField(max_length=40, unique=True)  # webhook-id, the same on every try
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+")
    event_type = models.CharField(max_length=40)
    object_type = models.CharField(max_length=16)
    object_id = models.UUIDField()
    payload = models.JSONField()
    # An event of "When MTN disagrees" (``*.needs_review``, or a status a person corrected):
    # it may come again for the same object and type (MTN contradicts it again later), so
    # the one-event-per-final-state rule below leaves it out.
    review = models.BooleanField(default=False)
    url = models.URLField(max_length=500, blank=True, default="")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "merchant webhook delivery"
        verbose_name_plural = "merchant webhook deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["object_type", "object_id", "event_type"],
                condition=Q(review=False),
                name="one_event_per_final_state",
            )
        ]
        indexes = [
            models.Index(fields=["object_type", "object_id"], name="delivery_object"),
            models.Index(
                fields=["next_attempt_at"],
                name="delivery_due_work",
                condition=Q(next_attempt_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} {self.event_type} ({self.state})"


class DeliveryAttempt(models.Model):
    """One HTTP attempt at a merchant delivery, kept for support staff."""

    delivery = models.ForeignKey(
        MerchantDelivery, on_delete=models.CASCADE, related_name="attempts"
    )
    attempted_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    succeeded = models.BooleanField(default=False)
    duration_ms = models.PositiveIntegerField(default=0)
    response_excerpt = models.CharField(max_length=500, blank=True, default="")
    error = models.CharField(max_length=500, blank=True, default="")
    triggered_by = models.CharField(max_length=150, default="schedule")

    class Meta:
        ordering = ["attempted_at", "id"]

    def __str__(self) -> str:
        return (
            f"attempt at {self.attempted_at:%Y-%m-%d %H:%M:%S} → {self.status_code or self.error}"
        )


class MtnCallback(models.Model):
    """An MTN callback exactly as received, and what the gateway made of it."""

    class Door(models.TextChoices):
        SIGNED = "signed", "Signed (X-Signature-256)"
        TOKEN = "token", "Per-payment URL"

    class Outcome(models.TextChoices):
        RECEIVED = "received", "Received, not yet processed"
        APPLIED = "applied", "Applied"
        DUPLICATE = "duplicate", "Duplicate: the payment already had this status"
        FINAL_ALREADY = "final_already", "Ignored: the payment was already final"
        CONTRADICTED = "contradicted", "MTN reports another final status: flagged for review"
        UNCONFIRMED = "unconfirmed", "Not confirmed by MTN's status endpoint"
        MISMATCH = "mismatch", "Amount, currency or party differ: flagged for review"
        UNMATCHED = "unmatched", "No known payment"
        DEFERRED = "deferred", "MTN could not be asked yet: the worker confirms it"
        NOT_FINAL = "not_final", "Reported a non-final status: nothing to apply"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    door = models.CharField(max_length=8, choices=Door.choices)
    method = models.CharField(max_length=8)
    headers = models.JSONField(default=dict)
    raw_body = models.TextField()
    remote_addr = models.CharField(max_length=64, blank=True, default="")
    signature_valid = models.BooleanField(null=True, blank=True)
    object_type = models.CharField(max_length=16, blank=True, default="")
    object_id = models.UUIDField(null=True, blank=True)
    tenant = models.ForeignKey(
        "tenants.Tenant", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reported_status = models.CharField(max_length=32, blank=True, default="")
    confirmed_status = models.CharField(max_length=32, blank=True, default="")
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.RECEIVED)
    outcome_detail = models.CharField(max_length=500, blank=True, default="")
    confirm_attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-received_at"]
        verbose_name = "MTN callback"
        indexes = [
            models.Index(fields=["object_type", "object_id"], name="callback_object"),
            models.Index(
                fields=["next_attempt_at"],
                name="callback_due_work",
                condition=Q(next_attempt_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"callback {self.id} ({self.door}, {self.outcome})"
