"""manage.py balance_adjust SLUG CURRENCY AMOUNT --reason TEXT (the contract's command)."""

from __future__ import annotations

import json
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from gateway.models import AuditEvent
from ledger.models import LedgerAccount, LedgerTransaction
from ledger.selectors import balance_get, ledger_verify

pytestmark = pytest.mark.django_db


def adjust(*args: str) -> dict:
    out = StringIO()
    call_command("balance_adjust", *args, stdout=out, stderr=StringIO())
    return json.loads(out.getvalue())


def snapshot() -> tuple:
    return (
        LedgerTransaction.objects.count(),
        list(LedgerAccount.objects.order_by("pk").values_list("pk", "balance")),
        AuditEvent.objects.filter(action="ledger_adjustment").count(),
    )


def test_a_credit_prints_the_available_balance_after_it(tenant):
    printed = adjust(tenant.slug, "UGX", "50000", "--reason", "pre-funding payouts")

    assert printed == {"tenant": tenant.slug, "currency": "UGX", "available": "50000"}
    posted = LedgerTransaction.objects.get()
    assert (posted.type, posted.net, posted.memo) == ("adjustment", 50000, "pre-funding payouts")
    assert ledger_verify() == []


def test_a_debit_lowers_the_balance(tenant):
    adjust(tenant.slug, "EUR", "20", "--reason", "pre-funding")

    printed = adjust(tenant.slug, "EUR", "-7.25", "--reason", "correction")

    assert printed == {"tenant": tenant.slug, "currency": "EUR", "available": "12.75"}


def test_an_adjustment_is_audited(tenant):
    adjust(tenant.slug, "UGX", "1000", "--reason", "pre-funding")

    event = AuditEvent.objects.get(action="ledger_adjustment")
    assert event.tenant_id == tenant.pk
    assert event.actor == "system:manage.py balance_adjust"
    assert event.data == {"currency": "UGX", "amount": "1000", "reason": "pre-funding"}
    assert event.object_id == str(LedgerTransaction.objects.get().pk)


def test_a_debit_larger_than_available_exits_non_zero_and_changes_nothing(tenant):
    adjust(tenant.slug, "UGX", "1000", "--reason", "pre-funding")
    before = snapshot()

    with pytest.raises(CommandError, match="smaller than 1001"):
        adjust(tenant.slug, "UGX", "-1001", "--reason", "too much")

    assert snapshot() == before
    assert balance_get(tenant_id=tenant.pk, currency="UGX").available == 1000


def test_an_unknown_tenant_exits_non_zero_and_changes_nothing(tenant):
    with pytest.raises(CommandError, match="No tenant"):
        adjust("nobody", "UGX", "1000", "--reason", "pre-funding")

    assert snapshot() == (0, [], 0)


@pytest.mark.parametrize(
    ("currency", "amount"),
    [
        ("UGX", "1.5"),  # UGX has no decimals
        ("EUR", "10.505"),
        ("UGX", "0"),
        ("UGX", "-0"),
        ("UGX", "1e3"),
        ("UGX", "NaN"),
        ("UGX", "+5"),
        ("UGX", "--5"),
        ("UGX", "abc"),
        ("UGX", "1,000"),
        ("UGX", "99999999999"),  # over PAYMENT_MAX_AMOUNT
        ("XYZ", "10"),
        ("ugx", "10"),
    ],
)
def test_a_malformed_amount_or_currency_exits_non_zero_and_changes_nothing(
    tenant, currency, amount
):
    with pytest.raises(CommandError):
        adjust(tenant.slug, currency, amount, "--reason", "pre-funding")

    assert snapshot() == (0, [], 0)


@pytest.mark.parametrize("reason", ["", "   ", "x" * 501])
def test_a_missing_or_oversized_reason_exits_non_zero_and_changes_nothing(tenant, reason):
    with pytest.raises(CommandError):
        adjust(tenant.slug, "UGX", "10", "--reason", reason)

    assert snapshot() == (0, [], 0)


def test_the_reason_is_required(tenant):
    with pytest.raises(CommandError):
        adjust(tenant.slug, "UGX", "10")

    assert snapshot() == (0, [], 0)


def test_two_decimals_are_fine_for_eur(tenant):
    assert adjust(tenant.slug, "EUR", "10.50", "--reason", "x")["available"] == "10.50"
    assert balance_get(tenant_id=tenant.pk, currency="EUR").available == Decimal("10.50")
