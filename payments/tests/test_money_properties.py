"""Property-based: random sequences of payments, payouts, refunds and their outcomes, run
through the services, keep every balance non-negative and equal to its replayed entries,
and to what a plain model of the rules says it should be."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.audit import Actor
from ledger.errors import InsufficientFunds
from ledger.fees import collection_fee
from ledger.selectors import balance_get, ledger_verify
from ledger.services import ledger_adjust
from payments import services
from payments.errors import RefundExceedsPayment
from payments.models import Payment, Payout
from payments.states import Status

pytestmark = pytest.mark.django_db

FEE_PERCENT = Decimal("2.5")
amounts = st.integers(min_value=1, max_value=5000)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("fund"), amounts),
        st.tuples(st.just("pay"), amounts, st.booleans()),
        st.tuples(st.just("payout"), amounts),
        st.tuples(st.just("refund"), st.integers(0, 9), st.none() | amounts),
        st.tuples(st.just("finish"), st.integers(0, 19), st.booleans()),
    ),
    max_size=25,
)


class Model:
    """The rules in plain arithmetic: what the tenant's balance must be."""

    def __init__(self) -> None:
        self.available = Decimal(0)
        self.reserved = Decimal(0)
        self.paid: list[Payment] = []
        self.left: dict[object, Decimal] = {}  # per payment: what may still be refunded
        self.pending: list = []  # payouts and refunds in flight


def run(tenant, model: Model, operation: tuple) -> None:
    kind = operation[0]
    if kind == "fund":
        ledger_adjust(
            tenant_id=tenant.pk,
            currency="UGX",
            amount=Decimal(operation[1]),
            reason="funding",
            actor=Actor.system(),
        )
        model.available += operation[1]
    elif kind == "pay":
        _, amount, succeeds = operation
        payment = services.transfer_create(
            model=Payment,
            tenant=tenant,
            actor=Actor.system(),
            amount=Decimal(amount),
            currency="UGX",
            party="256772123456",
        )
        target = Status.SUCCESSFUL if succeeds else Status.FAILED
        services.transfer_transition(transfer=payment, target=target, actor=Actor.mtn())
        if succeeds:
            fee = collection_fee(amount=Decimal(amount), percent=FEE_PERCENT, decimals=0)
            model.available += amount - fee
            model.paid.append(Payment.objects.select_related("tenant").get(pk=payment.pk))
            model.left[payment.pk] = Decimal(amount)
    elif kind == "payout":
        amount = Decimal(operation[1])
        try:
            payout = services.transfer_create(
                model=Payout,
                tenant=tenant,
                actor=Actor.system(),
                amount=amount,
                currency="UGX",
                party="256772123457",
            )
        except InsufficientFunds:
            assert amount > model.available
            return
        assert amount <= model.available
        model.available -= amount
        model.reserved += amount
        model.pending.append(payout)
    elif kind == "refund":
        _, index, raw = operation
        if not model.paid:
            return
        payment = model.paid[index % len(model.paid)]
        left = model.left[payment.pk]
        wanted = left if raw is None else Decimal(raw)
        try:
            refund = services.refund_create(
                payment=payment, actor=Actor.system(), amount=None if raw is None else wanted
            )
        except RefundExceedsPayment:
            assert wanted > left or left == 0
            return
        except InsufficientFunds:
            assert wanted <= left
            assert wanted > model.available
            return
        assert refund.amount == wanted <= min(left, model.available)
        model.left[payment.pk] -= wanted
        model.available -= wanted
        model.reserved += wanted
        model.pending.append(refund)
    elif kind == "finish":
        _, index, succeeds = operation
        if not model.pending:
            return
        transfer = model.pending.pop(index % len(model.pending))
        target = Status.SUCCESSFUL if succeeds else Status.FAILED
        services.transfer_transition(transfer=transfer, target=target, actor=Actor.mtn())
        model.reserved -= transfer.amount
        if not succeeds:
            model.available += transfer.amount
            if transfer.kind == "refund":
                model.left[transfer.payment_id] += transfer.amount


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=operations)
def test_balances_follow_the_rules_and_their_entries(tenant, sequence):
    tenant.collection_fee_percent = FEE_PERCENT
    tenant.save(update_fields=["collection_fee_percent"])
    with transaction.atomic():
        model = Model()
        for operation in sequence:
            run(tenant, model, operation)
            balance = balance_get(tenant_id=tenant.pk, currency="UGX")
            assert balance.available >= 0
            assert balance.reserved >= 0
            assert (balance.available, balance.reserved) == (model.available, model.reserved)
        assert ledger_verify() == []
        transaction.set_rollback(True)  # the next example starts from nothing
