"""A small double-entry ledger of the money the gateway holds for its tenants.

Three tables:

- ``LedgerAccount``: one per (owner, currency, kind). The owner is a tenant (its
  ``available`` and ``reserved`` money) or the platform (its ``fees``, the MTN wallets the
  money really sits in, and the ``funding`` counterparty of manual adjustments). Each row
  carries its running ``balance`` (the signed sum of its entries) and a ``version`` bumped
  on every change, so balances are read from one row and never summed on a request path.
- ``LedgerTransaction``: one business event (a payment settled, a payout reserved, ...),
  with the tenant-facing figures its statement shows. Unique per (source_object,
  source_id, type): the same event cannot be posted twice.
- ``LedgerEntry``: the signed legs of a transaction; per currency they sum to zero.

Sign convention: an entry adds its amount to its account's balance. Money owed to a tenant
or earned by the platform is positive; the external MTN wallets and the funding account are
counterparties, so the collection wallet goes negative by what came in and the disbursement
wallet positive by what went out. Entries and transactions are append-only; on PostgreSQL
triggers enforce that and refuse an unbalanced transaction at commit (migration 0002).
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from django.db import models
from django.db.models import Q

AMOUNT_DIGITS = 20
AMOUNT_DECIMALS = 2


class AccountKind(models.TextChoices):
    AVAILABLE = "available", "Tenant: available"
    RESERVED = "reserved", "Tenant: reserved for payouts and refunds in flight"
    FEES = "fees", "Platform: collection fees"
    MTN_COLLECTION = "mtn_collection", "External: the platform's MTN collection wallet"
    MTN_DISBURSEMENT = "mtn_disbursement", "External: the platform's MTN disbursement wallet"
    FUNDING = "funding", "External: counterparty of manual adjustments"


TENANT_KINDS = (AccountKind.AVAILABLE, AccountKind.RESERVED)
# Accounts that hold real obligations and so can never be overdrawn (CHECK balance >= 0).
NON_NEGATIVE_KINDS = (AccountKind.AVAILABLE, AccountKind.RESERVED, AccountKind.FEES)


class TransactionType(models.TextChoices):
    PAYMENT = "payment"
    PAYOUT = "payout"
    PAYOUT_FAILURE = "payout_failure"
    PAYOUT_SETTLED = "payout_settled"
    REFUND = "refund"
    REFUND_FAILURE = "refund_failure"
    REFUND_SETTLED = "refund_settled"
    ADJUSTMENT = "adjustment"
    # A person accepted MTN's final status over ours (``transfer_resolve --accept-mtn``): the
    # difference between what was posted and what MTN's status would have posted.
    CORRECTION = "correction"


# The types a tenant's statement lists (the contract's): the ones that move `available`.
STATEMENT_TYPES = (
    TransactionType.PAYMENT,
    TransactionType.PAYOUT,
    TransactionType.PAYOUT_FAILURE,
    TransactionType.REFUND,
    TransactionType.REFUND_FAILURE,
    TransactionType.ADJUSTMENT,
    TransactionType.CORRECTION,
)

# The platform's accounts of a currency are spread over this many rows ("stripes") each,
# and a tenant's postings always use the same one (``platform_stripe``): settlements of
# different tenants then rarely wait on the same row lock. A platform balance is the sum of
# its stripes. Never lower it: postings of a tenant must keep finding the stripe its
# earlier postings credited (a correction debits the fee it credited).
PLATFORM_STRIPES = 32


def platform_stripe(tenant_id: uuid.UUID) -> int:
    """The stripe of the platform's accounts that ``tenant_id``'s postings use."""
    return tenant_id.int % PLATFORM_STRIPES


class SourceObject(models.TextChoices):
    PAYMENT = "payment"
    PAYOUT = "payout"
    REFUND = "refund"
    ADJUSTMENT = "adjustment"
    # The one reservation of a payout batch's total (type ``payout``); each item's failure
    # or settlement is posted under the item's own ``payout`` source.
    PAYOUT_BATCH = "payout_batch"


class LedgerAccount(models.Model):
    """One account. ``tenant_id`` is null for the platform's and the external accounts."""

    id = models.BigAutoField(primary_key=True)
    # A tenant's UUID, not a foreign key: the ledger depends on nothing but `gateway`.
    tenant_id = models.UUIDField(null=True, blank=True)
    currency = models.CharField(max_length=3)
    kind = models.CharField(max_length=24, choices=AccountKind.choices)
    # Which of the platform's rows of (currency, kind) this is; 0 for a tenant's accounts.
    stripe = models.PositiveSmallIntegerField(default=0)
    balance = models.DecimalField(
        max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_DECIMALS, default=0
    )
    version = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "ledger_account"
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant_id", "currency", "kind"],
                condition=Q(tenant_id__isnull=False),
                name="ledger_account_unique_tenant",
            ),
            models.UniqueConstraint(
                fields=["currency", "kind", "stripe"],
                condition=Q(tenant_id__isnull=True),
                name="ledger_account_unique_platform_stripe",
            ),
            models.CheckConstraint(
                condition=Q(tenant_id__isnull=True) | Q(stripe=0),
                name="ledger_account_tenant_unstriped",
            ),
            models.CheckConstraint(
                condition=Q(balance__gte=0) | ~Q(kind__in=[k.value for k in NON_NEGATIVE_KINDS]),
                name="ledger_account_balance_not_negative",
            ),
            models.CheckConstraint(
                condition=(
                    Q(tenant_id__isnull=False, kind__in=[k.value for k in TENANT_KINDS])
                    | (Q(tenant_id__isnull=True) & ~Q(kind__in=[k.value for k in TENANT_KINDS]))
                ),
                name="ledger_account_owner_matches_kind",
            ),
        ]

    def __str__(self) -> str:
        owner = str(self.tenant_id) if self.tenant_id else "platform"
        stripe = f" #{self.stripe}" if self.tenant_id is None else ""
        return f"{owner} {self.currency} {self.kind}{stripe}"


class AppendOnlyQuerySet(models.QuerySet[Any]):
    def update(self, **kwargs: Any) -> int:
        raise TypeError("The ledger is append-only: rows cannot be updated.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise TypeError("The ledger is append-only: rows cannot be deleted.")


class AppendOnlyModel(models.Model):
    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise TypeError("The ledger is append-only: rows cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise TypeError("The ledger is append-only: rows cannot be deleted.")


class LedgerTransaction(AppendOnlyModel):
    """One business event and what it did to the tenant's available balance.

    ``amount``, ``fee`` and ``net`` are the statement's signed figures: ``net = amount -
    fee`` is the change of the tenant's ``available`` balance (so a payout is negative, its
    failure positive, and a settlement, which moves only ``reserved``, is zero).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=24, choices=TransactionType.choices)
    tenant_id = models.UUIDField()
    currency = models.CharField(max_length=3)
    amount = models.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_DECIMALS)
    fee = models.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_DECIMALS, default=0)
    net = models.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_DECIMALS)
    source_object = models.CharField(max_length=16, choices=SourceObject.choices)
    source_id = models.UUIDField()
    # Why an adjustment was made (empty for the other types).
    memo = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    objects: ClassVar[AppendOnlyQuerySet] = AppendOnlyQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        db_table = "ledger_transaction"
        ordering = ["-created_at", "-id"]
        constraints = [
            # A correction is the exception: an object MTN contradicts again after a first
            # correction gets a second one. Its once-only guard is the review flag, cleared
            # under the object's row lock in the same transaction.
            models.UniqueConstraint(
                fields=["source_object", "source_id", "type"],
                condition=~Q(type="correction"),
                name="ledger_transaction_unique_source",
            ),
        ]
        indexes = [
            models.Index(
                fields=["tenant_id", "-created_at", "-id"], name="ledger_txn_tenant_created"
            ),
        ]
        permissions = [("adjust_balance", "Can adjust a tenant's balance")]

    def __str__(self) -> str:
        return f"{self.type} {self.amount} {self.currency} ({self.source_object} {self.source_id})"


class LedgerEntry(AppendOnlyModel):
    """One signed leg: ``amount`` is added to ``account``'s balance."""

    id = models.BigAutoField(primary_key=True)
    transaction = models.ForeignKey(
        LedgerTransaction, on_delete=models.PROTECT, related_name="entries"
    )
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="entries")
    amount = models.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_DECIMALS)
    created_at = models.DateTimeField(auto_now_add=True)

    objects: ClassVar[AppendOnlyQuerySet] = AppendOnlyQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        db_table = "ledger_entry"
        ordering = ["id"]
        verbose_name_plural = "ledger entries"
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="ledger_entry_amount_not_zero"),
        ]

    def __str__(self) -> str:
        return f"{self.amount} on account {self.account_id}"
