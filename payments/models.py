"""Payments (collections), payouts (disbursements) and refunds. Fields, constraints, indexes; no
I/O."""

from __future__ import annotations

import secrets
import uuid
from decimal import Decimal
from typing import ClassVar

from django.db import models
from django.db.models import Q

from payments.states import Status, Submission


def new_callback_token() -> str:
    # 256 random bits: the per-payment callback URL must not be guessable (contract: >= 128).
    return secrets.token_urlsafe(32)


class MoneyTransfer(models.Model):
    """What payments, payouts and refunds share: money, status, and the MTN submission's state.

    ``status`` is written only by ``payments.services.transfer_transition``; the submission
    fields only by the submission services. ``next_attempt_at`` says when the worker next
    has something to do with the row (submit it, or poll MTN for its status); it is null
    when nothing is due, which keeps the worker's partial index small.
    """

    kind: ClassVar[str]
    party_field: ClassVar[str]
    mtn_product: ClassVar[str]

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    amount = models.DecimalField(max_digits=20, decimal_places=2)
    currency = models.CharField(max_length=3)
    failure_code = models.CharField(max_length=64, blank=True, default="")
    failure_message = models.CharField(max_length=500, blank=True, default="")

    # The MTN account that carries it (``mtn.accounts``): chosen when it is created (a refund
    # takes its payment's) and never changed, so that its submission, status polls, callback
    # confirmation and refunds all reach the MTN that holds it. Rows from before accounts
    # existed went through the platform account ``default``, which the MTN_* settings describe.
    mtn_account = models.CharField(max_length=64, default="default", editable=False)
    mtn_reference_id = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    mtn_financial_transaction_id = models.CharField(max_length=64, blank=True, default="")
    callback_token = models.CharField(
        max_length=64, unique=True, default=new_callback_token, editable=False
    )
    submission = models.CharField(
        max_length=16, choices=Submission.choices, default=Submission.QUEUED
    )
    submit_attempts = models.PositiveIntegerField(default=0)
    # Whether an attempt's outcome was unknown (a timeout, a 5xx...): MTN may have it, so no
    # later error may fail it (payments.services.submit.SUBMISSION_OUTCOMES).
    may_have_landed = models.BooleanField(default=False)
    poll_attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    needs_review = models.BooleanField(
        default=False, help_text="MTN's record disagreed with this one; a person should look."
    )
    # What MTN claimed when it disagreed (``payments.services.review``): why it was flagged,
    # MTN's status as read, and MTN's answer as received, kept for the person who resolves it.
    review_reason = models.CharField(max_length=500, blank=True, default="")
    mtn_claim_status = models.CharField(max_length=16, blank=True, default="")
    mtn_claim = models.JSONField(default=dict, blank=True)
    flagged_at = models.DateTimeField(null=True, blank=True)

    submitted_at = models.DateTimeField(null=True, blank=True)
    finalized_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.kind} {self.id} {self.status}"

    @property
    def party(self) -> str:
        return getattr(self, self.party_field)

    @property
    def is_final(self) -> bool:
        return self.status in (Status.SUCCESSFUL, Status.FAILED)

    @property
    def message_for_mtn(self) -> str | None:
        """What MTN is asked to show as payerMessage and payeeNote."""
        raise NotImplementedError


class MerchantTransfer(MoneyTransfer):
    """A payment or payout: the merchant names the party and may attach its own data."""

    # null, not "", for "not given": the API shows an omitted reference as null.
    reference = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    description = models.CharField(max_length=160, null=True, blank=True)  # noqa: DJ001
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        abstract = True

    @property
    def message_for_mtn(self) -> str | None:
        return self.description


class Payment(MerchantTransfer):
    kind = "payment"
    party_field = "payer"
    mtn_product = "collection"

    payer = models.CharField(max_length=15)
    # The sum of its SUCCESSFUL refunds, kept by the refunds' status writer in the transaction
    # that makes one SUCCESSFUL, so that showing a payment never sums its refunds.
    amount_refunded = models.DecimalField(max_digits=20, decimal_places=2, default=Decimal(0))
    # The tenant's collection fee in force when the payment was created: settlement charges
    # this one, whenever it settles (contract, Balances). Null only on rows a caller built
    # without it; those settle at the tenant's current percent.
    collection_fee_percent = models.DecimalField(
        max_digits=5, decimal_places=2, null=True, blank=True, editable=False
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "-created_at", "-id"], name="payment_tenant_created"),
            models.Index(fields=["tenant", "reference"], name="payment_tenant_reference"),
            models.Index(
                fields=["next_attempt_at"],
                name="payment_due_work",
                condition=Q(next_attempt_at__isnull=False),
            ),
            models.Index(
                fields=["flagged_at"],
                name="payment_needs_review",
                condition=Q(needs_review=True),
            ),
        ]


class PayoutBatch(models.Model):
    """Many payouts created in one request (payroll, commissions), paid from one reservation.

    Its items are ordinary ``Payout`` rows (``Payout.batch``), submitted, polled and settled
    like any payout. The progress counters are kept by ``payout_batch_item_final`` in the
    transaction that makes an item final (the batch row is the lock that orders them), so
    reading a batch never counts its items, and the one transaction that brings
    ``pending_count`` to zero completes it.
    """

    class State(models.TextChoices):
        PROCESSING = "PROCESSING"
        COMPLETED = "COMPLETED"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=State.choices, default=State.PROCESSING)
    currency = models.CharField(max_length=3)
    reference = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    description = models.CharField(max_length=160, null=True, blank=True)  # noqa: DJ001
    # Routed once for the whole batch; every item carries the same name.
    mtn_account = models.CharField("MTN account", max_length=64, default="default", editable=False)
    count = models.PositiveIntegerField()
    total_amount = models.DecimalField(max_digits=20, decimal_places=2)
    pending_count = models.PositiveIntegerField()
    successful_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    amount_succeeded = models.DecimalField(max_digits=20, decimal_places=2, default=Decimal(0))
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "payout batch"
        verbose_name_plural = "payout batches"
        indexes = [
            models.Index(fields=["tenant", "-created_at", "-id"], name="batch_tenant_created"),
            models.Index(fields=["tenant", "reference"], name="batch_tenant_reference"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(pending_count__lte=models.F("count")), name="batch_pending_le_count"
            ),
        ]

    def __str__(self) -> str:
        return f"payout batch {self.id} {self.status}"

    @property
    def done_count(self) -> int:
        return self.successful_count + self.failed_count


class Payout(MerchantTransfer):
    kind = "payout"
    party_field = "payee"
    mtn_product = "disbursement"

    payee = models.CharField(max_length=15)
    # The batch it was created in, if any, and its place there (0-based, the request's order).
    batch = models.ForeignKey(
        PayoutBatch,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="payouts",
        db_index=False,  # payout_batch_items below covers it
    )
    batch_index = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "-created_at", "-id"], name="payout_tenant_created"),
            models.Index(fields=["tenant", "reference"], name="payout_tenant_reference"),
            models.Index(
                fields=["next_attempt_at"],
                name="payout_due_work",
                condition=Q(next_attempt_at__isnull=False),
            ),
            models.Index(
                fields=["batch", "batch_index"],
                name="payout_batch_items",
                condition=Q(batch__isnull=False),
            ),
            models.Index(
                fields=["flagged_at"],
                name="payout_needs_review",
                condition=Q(needs_review=True),
            ),
        ]


class Refund(MoneyTransfer):
    """Money given back to a payment's payer, through MTN's disbursement refund.

    Submitted, polled and settled by the same services as payouts. ``payer`` is the
    payment's payer (who receives the money), kept so that MTN's record can be checked
    against it without reading the payment.
    """

    kind = "refund"
    party_field = "payer"
    mtn_product = "disbursement"

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    payer = models.CharField(max_length=15)
    reason = models.CharField(max_length=160, null=True, blank=True)  # noqa: DJ001

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "-created_at", "-id"], name="refund_tenant_created"),
            models.Index(
                fields=["tenant", "payment", "-created_at", "-id"], name="refund_tenant_payment"
            ),
            models.Index(
                fields=["next_attempt_at"],
                name="refund_due_work",
                condition=Q(next_attempt_at__isnull=False),
            ),
            models.Index(
                fields=["flagged_at"],
                name="refund_needs_review",
                condition=Q(needs_review=True),
            ),
        ]

    @property
    def message_for_mtn(self) -> str | None:
        return self.reason


class ReconcileRun(models.Model):
    """One run of ``reconcile``: its window, what it found, and the platform wallets as read.

    ``daily_for`` is set on the worker's daily run (the day it covers) and unique, so that of
    several workers only one runs a given day's reconciliation.
    """

    id = models.BigAutoField(primary_key=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    since = models.DateTimeField()
    until = models.DateTimeField()
    account = models.CharField(max_length=64, blank=True, default="")
    daily_for = models.DateField(null=True, blank=True, unique=True)
    checked = models.PositiveIntegerField(default=0)
    disagreements = models.PositiveIntegerField(default=0)
    unanswered = models.PositiveIntegerField(default=0)
    # [{"account", "product", "currency", "mtn": "<balance>", "ledger": "<balance>"}, ...]
    wallets = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"reconcile {self.since:%Y-%m-%d %H:%M} to {self.until:%Y-%m-%d %H:%M}"


TRANSFER_MODELS: dict[str, type[MoneyTransfer]] = {
    "payment": Payment,
    "payout": Payout,
    "refund": Refund,
}
