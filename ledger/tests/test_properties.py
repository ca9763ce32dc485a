"""Random sequences of postings: balances never go negative and always equal the replayed
entries, and the statement's nets add up to the available balance."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.audit import Actor
from gateway.money import CURRENCY_DECIMALS
from ledger.errors import InsufficientFunds
from ledger.fees import collection_fee
from ledger.models import LedgerAccount, LedgerEntry
from ledger.selectors import balance_get, balance_transaction_list, ledger_verify
from ledger.services import (
    ledger_adjust,
    ledger_payment_settled,
    ledger_release,
    ledger_reserve,
    ledger_settle,
)

pytestmark = pytest.mark.django_db

CURRENCIES = ["UGX", "EUR"]

minor_units = st.integers(min_value=1, max_value=50_000)
operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("pay"),
            st.sampled_from(CURRENCIES),
            minor_units,
            st.decimals(min_value=0, max_value=100, places=2),
        ),
        st.tuples(
            st.just("reserve"),
            st.sampled_from(CURRENCIES),
            minor_units,
            st.sampled_from(["payout", "refund"]),
        ),
        st.tuples(st.just("release"), st.integers(min_value=0, max_value=30)),
        st.tuples(st.just("settle"), st.integers(min_value=0, max_value=30)),
        st.tuples(
            st.just("adjust"),
            st.sampled_from(CURRENCIES),
            st.integers(min_value=-50_000, max_value=50_000).filter(bool),
        ),
        st.tuples(st.just("repeat"), st.integers(min_value=0, max_value=30)),
    ),
    max_size=25,
)


def _money(units: int, currency: str) -> Decimal:
    return Decimal(units).scaleb(-CURRENCY_DECIMALS[currency])


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=operations)
def test_random_postings_keep_the_ledger_exact(tenant, steps):
    with transaction.atomic():
        _replay(tenant.pk, steps)
        transaction.set_rollback(True)  # each example starts from an empty ledger


def _replay(tenant_id: uuid.UUID, steps: list[tuple]) -> None:
    available = dict.fromkeys(CURRENCIES, Decimal(0))
    reserved = dict.fromkeys(CURRENCIES, Decimal(0))
    in_flight: list[dict] = []  # reservations not yet released or settled
    done: list[tuple] = []  # postings already made, to repeat

    for step in steps:
        match step:
            case ("pay", currency, units, percent):
                amount = _money(units, currency)
                fee = collection_fee(
                    amount=amount, percent=percent, decimals=CURRENCY_DECIMALS[currency]
                )
                call = (
                    ledger_payment_settled,
                    {
                        "tenant_id": tenant_id,
                        "currency": currency,
                        "amount": amount,
                        "fee": fee,
                        "source_id": uuid.uuid4(),
                    },
                )
                call[0](**call[1])
                available[currency] += amount - fee
                done.append(call)
            case ("reserve", currency, units, source_object):
                amount = _money(units, currency)
                kwargs = {
                    "tenant_id": tenant_id,
                    "currency": currency,
                    "amount": amount,
                    "source_object": source_object,
                    "source_id": uuid.uuid4(),
                }
                if amount > available[currency]:
                    with pytest.raises(InsufficientFunds):
                        ledger_reserve(**kwargs)
                else:
                    ledger_reserve(**kwargs)
                    available[currency] -= amount
                    reserved[currency] += amount
                    in_flight.append(kwargs)
                    done.append((ledger_reserve, kwargs))
            case ("release" | "settle" as outcome, index) if in_flight:
                kwargs = in_flight.pop(index % len(in_flight))
                service = ledger_release if outcome == "release" else ledger_settle
                service(**kwargs)
                reserved[kwargs["currency"]] -= kwargs["amount"]
                if outcome == "release":
                    available[kwargs["currency"]] += kwargs["amount"]
                done.append((service, kwargs))
            case ("adjust", currency, units):
                amount = _money(units, currency)
                kwargs = {
                    "tenant_id": tenant_id,
                    "currency": currency,
                    "amount": amount,
                    "reason": "property test",
                    "actor": Actor.system(),
                }
                if available[currency] + amount < 0:
                    with pytest.raises(InsufficientFunds):
                        ledger_adjust(**kwargs)
                else:
                    ledger_adjust(**kwargs)
                    available[currency] += amount
            case ("repeat", index) if done:
                service, kwargs = done[index % len(done)]
                service(**kwargs)  # idempotent: changes nothing
            case _:
                continue

        for currency in CURRENCIES:
            balance = balance_get(tenant_id=tenant_id, currency=currency)
            assert (balance.available, balance.reserved) == (
                available[currency],
                reserved[currency],
            )
            assert balance.available >= 0
            assert balance.reserved >= 0

    assert ledger_verify() == []
    for account in LedgerAccount.objects.all():
        replayed = LedgerEntry.objects.filter(account=account).aggregate(total=Sum("amount"))
        assert Decimal(str(replayed["total"] or 0)).quantize(Decimal("0.01")) == account.balance
    for currency in CURRENCIES:
        statement = balance_transaction_list(tenant_id=tenant_id, currency=currency, limit=None)
        assert sum((row.net for row in statement.results), Decimal(0)) == available[currency]
