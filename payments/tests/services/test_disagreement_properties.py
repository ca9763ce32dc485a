"""Random interleavings of MTN's answers (contradictions included) and staff resolutions.

Whatever MTN says in whatever order, and whatever staff decide: the ledger stays exact
(``ledger_verify``), the balances are always what the objects' statuses imply, a final status
changes only by a resolution, and after ``--accept-mtn`` the object holds MTN's final word,
so that each tenant's balance is what MTN's word implies.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import fund_tenant
from gateway.audit import Actor
from gateway.money import currency_decimals
from ledger.fees import collection_fee
from ledger.selectors import balance_get, ledger_verify
from mtn.client import parse_transaction_status
from payments import services
from payments.models import Payment
from payments.states import Status

from .conftest import mtn_status_body, paid, refund_of, submitted

pytestmark = pytest.mark.django_db

STAFF = Actor.staff("operator")
FINAL = [Status.SUCCESSFUL, Status.FAILED]

steps_strategy = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=2),  # payment, payout, refund
        st.sampled_from(["SUCCESSFUL", "FAILED", "accept", "keep"]),
    ),
    min_size=1,
    max_size=8,
)


def _implied(objects, *, funding: Decimal, percent: Decimal) -> tuple[Decimal, Decimal]:
    """(available, reserved) that the objects' statuses imply."""
    payment, payout, refund, first_payment = objects
    decimals = currency_decimals("UGX")

    def net(p: Payment) -> Decimal:
        return p.amount - collection_fee(amount=p.amount, percent=percent, decimals=decimals)

    available = funding + net(first_payment)
    reserved = Decimal(0)
    if payment.status == Status.SUCCESSFUL:
        available += net(payment)
    for held in (payout, refund):
        if held.status == Status.PENDING:
            available -= held.amount
            reserved += held.amount
        elif held.status == Status.SUCCESSFUL:
            available -= held.amount
    return available, reserved


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=steps_strategy,
    percent=st.decimals(min_value=0, max_value=100, places=2),
    amount=st.integers(min_value=1, max_value=5000),
)
def test_random_mtn_answers_and_resolutions_keep_money_equal_to_mtns_word(
    tenant, steps, percent, amount
):
    with transaction.atomic():
        tenant.collection_fee_percent = percent
        tenant.save(update_fields=["collection_fee_percent"])
        funding = Decimal(100_000)
        fund_tenant(tenant, "UGX", funding)
        first_payment = paid(tenant, amount="5000")
        payment = submitted(tenant, amount=str(amount))
        payout = submitted(tenant, kind="payout", amount=str(amount))  # funds itself first
        funding += amount
        refund = refund_of(first_payment, str(min(amount, 5000)))
        objects = [payment, payout, refund]
        mtn_word: dict[int, str] = {}

        for index, action in steps:
            obj = type(objects[index]).objects.select_related("tenant").get(pk=objects[index].pk)
            before = obj.status
            if action in FINAL:
                mtn_word[index] = action
                body = mtn_status_body(obj, action)
                services.transfer_apply_mtn_status(
                    transfer=obj, mtn_status=parse_transaction_status(body), source="test"
                )
                after = type(obj).objects.get(pk=obj.pk)
                # A final status never changes on MTN's word alone: it is flagged instead.
                if before != Status.PENDING:
                    assert after.status == before
                    assert (
                        after.needs_review
                        or after.status == action
                        or (after.mtn_claim_status == action)
                    )
            else:
                decision = services.ACCEPT_MTN if action == "accept" else services.KEEP
                try:
                    result = services.transfer_resolve(
                        transfer=obj, decision=decision, reason="property", actor=STAFF
                    )
                except services.ResolutionRefused:
                    result = None  # e.g. MTN's claim is not final: nothing changed
                    assert type(obj).objects.get(pk=obj.pk).status == before
                if result is not None and result.changed and decision == services.ACCEPT_MTN:
                    assert result.transfer.status == mtn_word[index]
                    assert not result.transfer.needs_review
            objects[index] = type(obj).objects.get(pk=obj.pk)
            assert ledger_verify() == []
            balance = balance_get(tenant_id=tenant.pk, currency="UGX")
            expected = _implied(
                [*objects, first_payment], funding=Decimal(100_000) + amount, percent=percent
            )
            assert (balance.available, balance.reserved) == expected

        # Staff accept MTN's word on everything still flagged: then every object MTN spoke
        # about holds its word, unless a person kept ours against that very claim.
        for index, obj in enumerate(objects):
            current = type(obj).objects.select_related("tenant").get(pk=obj.pk)
            if current.needs_review:
                services.transfer_resolve(
                    transfer=current, decision=services.ACCEPT_MTN, reason="end", actor=STAFF
                )
            current = type(obj).objects.get(pk=obj.pk)
            objects[index] = current
            if index in mtn_word and current.status != mtn_word[index]:
                assert not current.needs_review
                assert current.mtn_claim_status == mtn_word[index]  # kept by a person
        balance = balance_get(tenant_id=tenant.pk, currency="UGX")
        assert (balance.available, balance.reserved) == _implied(
            [*objects, first_payment], funding=Decimal(100_000) + amount, percent=percent
        )
        refunded = Payment.objects.get(pk=first_payment.pk).amount_refunded
        assert refunded == (objects[2].amount if objects[2].status == Status.SUCCESSFUL else 0)
        assert ledger_verify() == []
        transaction.set_rollback(True)
