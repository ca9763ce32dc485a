"""Tenants (the merchants' organisations) and their API keys."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from gateway.crypto import EncryptedTextField
from tenants.rates import validate_rate

slug_validator = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$",
    "Use 1 to 64 lower-case letters, digits and hyphens, not starting or ending with a hyphen.",
)


class Tenant(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.CharField(max_length=64, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=200)
    is_active = models.BooleanField(
        default=True, help_text="A suspended tenant's requests are refused with 403."
    )
    webhook_url = models.URLField(max_length=500, blank=True, default="")
    # Encrypted at rest (FIELD_ENCRYPTION_KEYS): it must be read back to sign, so it cannot be
    # hashed like an API key.
    webhook_secret = EncryptedTextField(editable=False)
    # During a rotation the old secret keeps signing beside the new one until this time.
    previous_webhook_secret = EncryptedTextField(blank=True, default="", editable=False)
    previous_webhook_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    rate_limit = models.CharField(
        max_length=32,
        blank=True,
        default="",
        validators=[validate_rate],
        help_text="Requests per API key, e.g. 600/m. Empty: RATE_LIMIT_DEFAULT.",
    )
    collection_fee_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal(0),
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(100))],
        help_text=(
            "The gateway's fee on each successful collection, in percent (0 to 100, two "
            "decimals). Applied when a payment succeeds, rounded half-up to the currency's "
            "decimals; a change applies to payments that succeed afterwards."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(
                condition=Q(collection_fee_percent__gte=0, collection_fee_percent__lte=100),
                name="tenant_collection_fee_percent_0_to_100",
            )
        ]

    def __str__(self) -> str:
        return self.slug


class ApiKey(models.Model):
    """An API key. Only its public prefix and a SHA-256 hash of the whole key are stored."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    prefix = models.CharField(max_length=12, db_index=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    name = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.tenant.slug})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
