"""MTN accounts: a market's (or one tenant's own) MTN credentials, encrypted at rest.

The platform account ``default`` is not a row: the ``MTN_*`` settings describe it, so that an
existing deployment changes nothing (``mtn.accounts``). The owning tenant is referred to by
name only, so that this app still imports nothing from the others.
"""

from __future__ import annotations

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from gateway.crypto import EncryptedTextField

PRODUCTS = ("collection", "disbursement")
CREDENTIAL_FIELDS = ("subscription_key", "api_user", "api_key")
DEFAULT_ACCOUNT = "default"

account_name_validator = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$",
    "Use 1 to 64 lower-case letters, digits, hyphens and underscores, starting and ending "
    "with a letter or digit.",
)
currency_validator = RegexValidator(r"^[A-Z]{3}$", "Use an ISO 4217 code such as UGX.")
target_environment_validator = RegexValidator(
    r"^[a-z0-9]{1,64}$", "Use MTN's value, such as sandbox, mtnuganda or mtnghana."
)


class MtnAccount(models.Model):
    name = models.CharField(max_length=64, unique=True, validators=[account_name_validator])
    # Null: the platform's account. A tenant's own account carries only that tenant's money.
    tenant = models.ForeignKey(
        "tenants.Tenant",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="mtn_accounts",
    )
    target_environment = models.CharField(max_length=64, validators=[target_environment_validator])
    base_url = models.URLField(max_length=300)
    # Public base URL of the gateway as MTN reaches it for this account (its host must be the
    # API user's providerCallbackHost). Empty: no X-Callback-Url, polling only.
    callback_url = models.URLField(max_length=300, blank=True, default="")
    # Every credential is encrypted (FIELD_ENCRYPTION_KEYS) and never shown back. Empty: the
    # account has no such product.
    collection_subscription_key = EncryptedTextField(blank=True, default="")
    collection_api_user = EncryptedTextField(blank=True, default="")
    collection_api_key = EncryptedTextField(blank=True, default="")
    disbursement_subscription_key = EncryptedTextField(blank=True, default="")
    disbursement_api_user = EncryptedTextField(blank=True, default="")
    disbursement_api_key = EncryptedTextField(blank=True, default="")
    # Calls to MTN through this account, over all processes (mtn.limits). Null: the
    # MTN_MAX_IN_FLIGHT and MTN_RATE_LIMIT settings.
    max_in_flight = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Calls at once to MTN through this account. Empty: MTN_MAX_IN_FLIGHT.",
    )
    rate_limit = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.01)],
        help_text="Calls per second to MTN through this account. Empty: MTN_RATE_LIMIT.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "MTN account"
        constraints = [
            models.CheckConstraint(
                condition=Q(max_in_flight__isnull=True) | Q(max_in_flight__gte=1),
                name="mtn_account_max_in_flight_positive",
            ),
            models.CheckConstraint(
                condition=Q(rate_limit__isnull=True) | Q(rate_limit__gt=0),
                name="mtn_account_rate_limit_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT_ACCOUNT and self.pk is None

    @property
    def is_tenant_owned(self) -> bool:
        return self.tenant_id is not None

    def currency_list(self) -> list[str]:
        """The currencies it carries, sorted; ``[]`` for ``default`` (it carries the rest)."""
        cached = getattr(self, "_currencies", None)
        if cached is not None:
            return list(cached)
        if self.pk is None:
            return []
        return sorted(self.currency_claims.values_list("currency", flat=True))

    def has_product(self, product: str) -> bool:
        """Whether all three credentials of ``product`` are set (decrypts the API user)."""
        return all(getattr(self, f"{product}_{part}") for part in CREDENTIAL_FIELDS)


class MtnAccountCurrency(models.Model):
    """One currency an account carries. ``tenant`` repeats the account's owner, so that the
    database itself refuses two accounts of one owner claiming the same currency."""

    account = models.ForeignKey(
        MtnAccount, on_delete=models.CASCADE, related_name="currency_claims"
    )
    tenant = models.ForeignKey(
        "tenants.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    currency = models.CharField(max_length=3, validators=[currency_validator])

    class Meta:
        verbose_name = "MTN account currency"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "currency"],
                condition=Q(tenant__isnull=False),
                name="mtn_one_tenant_account_per_currency",
            ),
            models.UniqueConstraint(
                fields=["currency"],
                condition=Q(tenant__isnull=True),
                name="mtn_one_platform_account_per_currency",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.currency} via {self.account_id}"
