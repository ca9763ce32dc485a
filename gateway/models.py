"""What every app shares in the database: the audit trail and idempotency keys."""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import models


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:
        raise TypeError("The audit trail is append-only: events cannot be updated.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise TypeError("The audit trail is append-only: events cannot be deleted.")


class AuditEvent(models.Model):
    """One thing that happened, by whom, to which object. Append-only.

    The model refuses updates and deletes; on PostgreSQL a trigger refuses them too, so
    that not even raw SQL from the application can rewrite history.
    """

    class ActorType(models.TextChoices):
        API_KEY = "api_key", "API key"
        STAFF = "staff", "Staff user"
        MTN = "mtn", "MTN"
        SYSTEM = "system", "System"

    tenant = models.ForeignKey(
        "tenants.Tenant", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    object_type = models.CharField(max_length=32)
    object_id = models.CharField(max_length=64)
    action = models.CharField(max_length=64)
    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    actor_id = models.CharField(max_length=150, blank=True, default="")
    data = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=128, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects: ClassVar[AuditEventQuerySet] = AuditEventQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["object_type", "object_id", "created_at"])]

    def __str__(self) -> str:
        return f"{self.object_type}:{self.object_id} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise TypeError("The audit trail is append-only: events cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise TypeError("The audit trail is append-only: events cannot be deleted.")

    @property
    def actor(self) -> str:
        return f"{self.actor_type}:{self.actor_id}" if self.actor_id else self.actor_type


class IdempotencyKey(models.Model):
    """A merchant's ``Idempotency-Key``, claimed by a unique row per (tenant, key)."""

    class State(models.TextChoices):
        IN_PROGRESS = "in_progress"
        COMPLETED = "completed"

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=State.choices, default=State.IN_PROGRESS)
    resource_type = models.CharField(max_length=32, blank=True, default="")
    resource_id = models.UUIDField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    locked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "key"], name="idempotency_key_unique_per_tenant"
            )
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.state})"
