"""Every posting, its entries, its idempotency, and what a refused posting leaves behind."""

from __future__ import annotations

import io
import json
import uuid
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction

from gateway.audit import Actor
from gateway.models import AuditEvent
from ledger.errors import InsufficientFunds, LedgerInvariantError
from ledger.models import AccountKind, LedgerAccount, LedgerEntry, LedgerTransaction
from ledger.selectors import balance_get, balance_list, ledger_has_reservation, ledger_verify
from ledger.services import (
    ledger_adjust,
    ledger_payment_settled,
    ledger_release,
    ledger_reserve,
    ledger_settle,
)

pytestmark = pytest.mark.django_db


def _account(kind: AccountKind, currency: str = "UGX", tenant_id: uuid.UUID | None = None):
    return LedgerAccount.objects.get(kind=kind, currency=currency, tenant_id=tenant_id)


def _entries(posted: LedgerTransaction) -> dict[str, Decimal]:
    return {entry.account.kind: entry.amount for entry in posted.entries.select_related("account")}


def _fund(tenant_id: uuid.UUID, amount: str = "1000", currency: str = "UGX") -> None:
    ledger_payment_settled(
        tenant_id=tenant_id,
        currency=currency,
        amount=Decimal(amount),
        fee=Decimal(0),
        source_id=uuid.uuid4(),
    )


def test_payment_settled_credits_tenant_net_and_platform_fee(tenant):
    posted = ledger_payment_settled(
        tenant_id=tenant.pk,
        currency="UGX",
        amount=Decimal(1000),
        fee=Decimal(15),
        source_id=uuid.uuid4(),
    )

    assert (posted.type, posted.amount, posted.fee, posted.net) == ("payment", 1000, 15, 985)
    assert _entries(posted) == {"mtn_collection": -1000, "available": 985, "fees": 15}
    assert balance_get(tenant_id=tenant.pk, currency="UGX").available == 985
    assert _account(AccountKind.FEES).balance == 15
    assert ledger_verify() == []


def test_payment_settled_twice_credits_once(tenant):
    source_id = uuid.uuid4()
    first = ledger_payment_settled(
        tenant_id=tenant.pk,
        currency="UGX",
        amount=Decimal(1000),
        fee=Decimal(0),
        source_id=source_id,
    )
    second = ledger_payment_settled(
        tenant_id=tenant.pk,
        currency="UGX",
        amount=Decimal(1000),
        fee=Decimal(0),
        source_id=source_id,
    )

    assert second.pk == first.pk
    assert balance_get(tenant_id=tenant.pk, currency="UGX").available == 1000
    assert LedgerTransaction.objects.count() == 1
    assert LedgerEntry.objects.count() == 2  # a zero fee writes no entry


def test_reserve_moves_available_to_reserved(tenant):
    _fund(tenant.pk)
    posted = ledger_reserve(
        tenant_id=tenant.pk,
        currency="UGX",
        amount=Decimal(400),
        source_object="payout",
        source_id=uuid.uuid4(),
    )

    assert (posted.type, posted.amount, posted.fee, posted.net) == ("payout", -400, 0, -400)
    assert _entries(posted) == {"available": -400, "reserved": 400}
    balance = balance_get(tenant_id=tenant.pk, currency="UGX")
    assert (balance.available, balance.reserved) == (600, 400)
    assert ledger_verify() == []


def test_reserve_twice_reserves_once(tenant):
    _fund(tenant.pk)
    source_id = uuid.uuid4()
    first = ledger_reserve(
        tenant_id=tenant.pk,
        currency="UGX",
        amount=Decimal(400),
        source_object="refund",
        source_id=source_id,
    )
    second = ledger_reserve(
        tenant_id=tenant.pk,
        currency="UGX",
        amount=Decimal(400),
        source_object="refund",
        source_id=source_id,
    )

    assert second.pk == first.pk
    assert first.type == "refund"
    assert balance_get(tenant_id=tenant.pk, currency="UGX").available == 600
    assert ledger_verify() == []


def test_reserve_repeat_after_balance_spent_returns_the_first(tenant):
    _fund(tenant.pk, "400")
    source_id = uuid.uuid4()
    first = ledger_reserve(
        tenant_id=tenant.pk,
        currency="UGX",
        amount=Decimal(400),
        source_object="payout",
        source_id=source_id,
    )

    again = ledger_reserve(
        tenant_id=tenant.pk,
        currency="UGX",
        amount=Decimal(400),
        source_object="payout",
        source_id=source_id,
    )

    assert again.pk == first.pk
    assert balance_get(tenant_id=tenant.pk, currency="UGX").reserved == 400


def test_reserve_more_than_available_is_refused_and_writes_nothing(tenant):
    _fund(tenant.pk, "100")
    before = (LedgerTransaction.objects.count(), LedgerEntry.objects.count())

    with transaction.atomic(), pytest.raises(InsufficientFunds) as refused:
        ledger_reserve(
            tenant_id=tenant.pk,
            currency="UGX",
            amount=Decimal(101),
            source_object="payout",
            source_id=uuid.uuid4(),
        )

    assert refused.value.code == "insufficient_funds"
    assert refused.value.http_status == 422
    assert (LedgerTransaction.objects.count(), LedgerEntry.objects.count()) == before
    balance = balance_get(tenant_id=tenant.pk, currency="UGX")
    assert (balance.available, balance.reserved) == (100, 0)


def test_reserve_without_any_account_is_insufficient_and_creates_nothing(tenant):
    with pytest.raises(InsufficientFunds):
        ledger_reserve(
            tenant_id=tenant.pk,
            currency="EUR",
            amount=Decimal("0.01"),
            source_object="payout",
            source_id=uuid.uuid4(),
        )

    assert not LedgerTransaction.objects.exists()
    assert not LedgerAccount.objects.filter(tenant_id=tenant.pk).exists()
    assert balance_list(tenant_id=tenant.pk) == []


def test_reserve_of_exactly_the_balance_leaves_zero(tenant):
    _fund(tenant.pk, "250")
    ledger_reserve(
        tenant_id=tenant.pk,
        currency="UGX",
        amount=Decimal(250),
        source_object="payout",
        source_id=uuid.uuid4(),
    )

    assert balance_get(tenant_id=tenant.pk, currency="UGX").available == 0


def test_release_gives_the_reservation_back_once(tenant):
    _fund(tenant.pk)
    source_id = uuid.uuid4()
    ledger_reserve(
        tenant_id=tenant.pk,
        currency="UGX",
        amount=Decimal(400),
        source_object="payout",
        source_id=source_id,
    )

    posted = ledger_release(
        tenant_id=tenant.pk,
        currency="UGX",
        amount=Decimal(400),
        source_object="payout",
        source_id=source_id,
    )
    again = ledger_release(
        tenant_id=tenant.pk,
        currency="UGX",
        amount=Decimal(400),
        source_object="payout",
        source_id=source_id,
    )

    assert again.pk == posted.pk
    assert (posted.type, posted.net) == ("payout_failure", 400)
    assert _entries(posted) == {"available": 400, "reserved": -400}
    balance = balance_get(tenant_id=tenant.pk, currency="UGX")
    assert (balance.available, balance.reserved) == (1000, 0)
    assert ledger_verify() == []


def test_settle_sends_the_reservation_out_and_leaves_available_alone(tenant):
    _fund(tenant.pk)
    source_id = uuid.uuid4()
    ledger_reserve(
        tenant_id=tenant.pk,
        currency="UGX",
        amount=Decimal(400),
        source_object="refund",
        source_id=source_id,
    )

    posted = ledger_settle(
        tenant_id=tenant.pk,
        currency="UGX",
        amount=Decimal(400),
        source_object="refund",
        source_id=source_id,
    )
    ledger_settle(
        tenant_id=tenant.pk,
        currency="UGX",
        amount=Decimal(400),
        source_object="refund",
        source_id=source_id,
    )

    assert (posted.type, posted.amount, posted.net) == ("refund_settled", 0, 0)
    assert _entries(posted) == {"reserved": -400, "mtn_disbursement": 400}
    balance = balance_get(tenant_id=tenant.pk, currency="UGX")
    assert (balance.available, balance.reserved) == (600, 0)
    assert _account(AccountKind.MTN_DISBURSEMENT).balance == 400
    assert ledger_verify() == []


def test_release_of_more_than_reserved_is_refused_and_writes_nothing(tenant):
    _fund(tenant.pk)

    with pytest.raises(LedgerInvariantError):
        ledger_release(
            tenant_id=tenant.pk,
            currency="UGX",
            amount=Decimal(1),
            source_object="payout",
            source_id=uuid.uuid4(),
        )

    assert LedgerTransaction.objects.count() == 1  # only the funding payment
    assert balance_get(tenant_id=tenant.pk, currency="UGX").available == 1000


def test_adjust_credit_and_debit_are_audited(tenant, admin_user):
    credit = ledger_adjust(
        tenant_id=tenant.pk,
        currency="EUR",
        amount=Decimal("25.50"),
        reason="pre-funding",
        actor=Actor.staff(admin_user.username),
    )
    debit = ledger_adjust(
        tenant_id=tenant.pk,
        currency="EUR",
        amount=Decimal("-5.25"),
        reason="correction",
        actor=Actor.system(),
    )

    assert (credit.type, credit.net, credit.memo) == ("adjustment", Decimal("25.50"), "pre-funding")
    assert credit.source_object == "adjustment"
    assert credit.source_id != debit.source_id
    assert _entries(debit) == {"funding": Decimal("5.25"), "available": Decimal("-5.25")}
    assert balance_get(tenant_id=tenant.pk, currency="EUR").available == Decimal("20.25")
    events = AuditEvent.objects.filter(action="ledger_adjustment").order_by("created_at", "id")
    assert [(e.tenant_id, e.object_id, e.actor, e.data["reason"]) for e in events] == [
        (tenant.pk, str(credit.pk), f"staff:{admin_user.username}", "pre-funding"),
        (tenant.pk, str(debit.pk), "system", "correction"),
    ]
    assert ledger_verify() == []


def test_adjust_debit_beyond_available_is_refused_and_writes_nothing(tenant):
    _fund(tenant.pk, "100")

    with pytest.raises(InsufficientFunds):
        ledger_adjust(
            tenant_id=tenant.pk,
            currency="UGX",
            amount=Decimal(-101),
            reason="too much",
            actor=Actor.system(),
        )

    assert LedgerTransaction.objects.count() == 1
    assert not AuditEvent.objects.filter(action="ledger_adjustment").exists()
    assert balance_get(tenant_id=tenant.pk, currency="UGX").available == 100


@pytest.mark.parametrize(
    ("amount", "reason"),
    [(Decimal(0), "zero"), (Decimal("1.5"), "UGX has no decimals"), (Decimal(5), "  ")],
)
def test_adjust_refuses_bad_input(tenant, amount, reason):
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies by case
        ledger_adjust(
            tenant_id=tenant.pk, currency="UGX", amount=amount, reason=reason, actor=Actor.system()
        )

    assert not LedgerTransaction.objects.exists()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"amount": Decimal(0), "source_object": "payout"},
        {"amount": Decimal(-1), "source_object": "payout"},
        {"amount": Decimal("0.5"), "source_object": "payout"},
        {"amount": Decimal(1), "source_object": "payment"},
        {"amount": Decimal(1), "source_object": "payout", "currency": "XYZ"},
    ],
)
def test_reserve_refuses_malformed_calls(tenant, kwargs):
    _fund(tenant.pk)
    arguments = {"tenant_id": tenant.pk, "currency": "UGX", "source_id": uuid.uuid4()} | kwargs

    with pytest.raises(ValueError):  # noqa: PT011
        ledger_reserve(**arguments)

    assert LedgerTransaction.objects.count() == 1


def test_payment_fee_larger_than_amount_is_refused(tenant):
    with pytest.raises(ValueError):  # noqa: PT011
        ledger_payment_settled(
            tenant_id=tenant.pk,
            currency="UGX",
            amount=Decimal(10),
            fee=Decimal(11),
            source_id=uuid.uuid4(),
        )

    assert not LedgerTransaction.objects.exists()


def test_balances_are_per_tenant_and_currency(tenant, other_tenant):
    _fund(tenant.pk, "1000", "UGX")
    _fund(tenant.pk, "12.34", "EUR")
    _fund(other_tenant.pk, "7", "UGX")

    assert [(b.currency, b.available, b.reserved) for b in balance_list(tenant_id=tenant.pk)] == [
        ("EUR", Decimal("12.34"), 0),
        ("UGX", 1000, 0),
    ]
    assert [b.available for b in balance_list(tenant_id=other_tenant.pk)] == [7]


def test_ledger_rows_refuse_updates_and_deletes_through_the_orm(tenant):
    _fund(tenant.pk)
    posted = LedgerTransaction.objects.get()

    with pytest.raises(TypeError):
        posted.save()
    with pytest.raises(TypeError):
        LedgerEntry.objects.all().delete()
    with pytest.raises(TypeError):
        LedgerTransaction.objects.update(memo="rewritten")

    assert LedgerEntry.objects.count() == 2


def test_verify_reports_a_balance_that_disagrees_with_its_entries(tenant):
    _fund(tenant.pk)
    LedgerAccount.objects.filter(tenant_id=tenant.pk, kind="available").update(balance=999)

    problems = ledger_verify()

    assert len(problems) == 1
    assert "balance 999.00 != sum of entries 1000.00" in problems[0]


def test_ledger_check_prints_a_clean_summary(tenant):
    _fund(tenant.pk)
    out = io.StringIO()

    call_command("ledger_check", stdout=out)

    summary = json.loads(out.getvalue())
    assert summary == {"ok": True, "accounts": 4, "transactions": 1, "entries": 2, "problems": []}


def test_ledger_check_exits_non_zero_and_lists_problems(tenant):
    _fund(tenant.pk)
    LedgerAccount.objects.filter(tenant_id=tenant.pk, kind="available").update(balance=5)
    out = io.StringIO()

    with pytest.raises(CommandError):
        call_command("ledger_check", stdout=out)

    summary = json.loads(out.getvalue())
    assert summary["ok"] is False
    account = _account(AccountKind.AVAILABLE, tenant_id=tenant.pk)
    assert summary["problems"] == [
        f"account {account.pk} ({tenant.pk} UGX available): balance 5.00 != sum of entries 1000.00"
    ]


def test_an_account_cannot_be_made_negative_even_by_a_direct_update(tenant):
    _fund(tenant.pk)

    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerAccount.objects.filter(tenant_id=tenant.pk, kind="available").update(balance=-1)

    assert balance_get(tenant_id=tenant.pk, currency="UGX").available == 1000


def test_cents_add_up_exactly_to_zero(tenant):
    _fund(tenant.pk, "0.30", "EUR")
    for amount in ("0.10", "0.20"):
        ledger_reserve(
            tenant_id=tenant.pk,
            currency="EUR",
            amount=Decimal(amount),
            source_object="payout",
            source_id=uuid.uuid4(),
        )

    with pytest.raises(InsufficientFunds):
        ledger_reserve(
            tenant_id=tenant.pk,
            currency="EUR",
            amount=Decimal("0.01"),
            source_object="payout",
            source_id=uuid.uuid4(),
        )

    balance = balance_get(tenant_id=tenant.pk, currency="EUR")
    assert (balance.available, balance.reserved) == (0, Decimal("0.30"))
    assert ledger_verify() == []


def test_has_reservation_tells_reserved_sources_from_older_ones(tenant):
    _fund(tenant.pk)
    reserved = uuid.uuid4()
    ledger_reserve(
        tenant_id=tenant.pk,
        currency="UGX",
        amount=Decimal(1),
        source_object="payout",
        source_id=reserved,
    )

    assert ledger_has_reservation(source_object="payout", source_id=reserved)
    assert not ledger_has_reservation(source_object="refund", source_id=reserved)
    assert not ledger_has_reservation(source_object="payout", source_id=uuid.uuid4())
