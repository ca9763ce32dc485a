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
        default=False, help_text="A callback disagreed with this record; a person should look."
    )

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
        ]


class Payout(MerchantTransfer):
    kind = "payout"
    party_field = "payee"
    mtn_product = "disbursement"

    payee = models.CharField(max_length=15)

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
        ]

    @property
    def message_for_mtn(self) -> str | None:
        return self.reason


TRANSFER_MODELS: dict[str, type[MoneyTransfer]] = {
    "payment": Payment,
    "payout": Payout,
    "refund": Refund,
}
