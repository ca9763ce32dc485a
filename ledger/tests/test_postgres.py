"""The ledger under real concurrency and the database's own guards, on PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from gateway.audit import Actor
from ledger.errors import InsufficientFunds
from ledger.models import AccountKind, LedgerAccount, LedgerEntry, LedgerTransaction
from ledger.selectors import balance_get, ledger_verify
from ledger.services import ledger_adjust, ledger_payment_settled, ledger_reserve
from tenants.services import tenant_create

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")


@pytest.fixture
def funded_tenant():
    tenant, _ = tenant_create(slug="funded", name="Funded", actor=Actor.system())
    ledger_adjust(
        tenant_id=tenant.pk, currency="UGX", amount=Decimal(10), reason="test", actor=Actor.system()
    )
    return tenant


def test_twenty_concurrent_reserves_of_one_against_ten_accept_exactly_ten(funded_tenant):
    count = 20
    barrier = threading.Barrier(count)
    accepted: list[uuid.UUID] = []
    refused: list[uuid.UUID] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def reserve() -> None:
        source_id = uuid.uuid4()
        try:
            barrier.wait(timeout=30)
            with transaction.atomic():
                ledger_reserve(
                    tenant_id=funded_tenant.pk,
                    currency="UGX",
                    amount=Decimal(1),
                    source_object="payout",
                    source_id=source_id,
                )
            with lock:
                accepted.append(source_id)
        except InsufficientFunds:
            with lock:
                refused.append(source_id)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=reserve) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert (len(accepted), len(refused)) == (10, 10)
    balance = balance_get(tenant_id=funded_tenant.pk, currency="UGX")
    assert (balance.available, balance.reserved) == (0, 10)
    assert set(
        LedgerTransaction.objects.filter(type="payout").values_list("source_id", flat=True)
    ) == set(accepted)
    assert ledger_verify() == []


def test_an_unbalanced_transaction_cannot_be_committed(funded_tenant):
    account = LedgerAccount.objects.get(tenant_id=funded_tenant.pk, kind=AccountKind.AVAILABLE)

    def post_one_leg() -> None:
        with transaction.atomic():  # the trigger is deferred: it refuses at this commit
            posted = LedgerTransaction.objects.create(
                type="adjustment",
                tenant_id=funded_tenant.pk,
                currency="UGX",
                amount=Decimal(5),
                net=Decimal(5),
                source_object="adjustment",
                source_id=uuid.uuid4(),
            )
            LedgerEntry.objects.create(transaction=posted, account=account, amount=Decimal(5))

    with pytest.raises(IntegrityError, match="unbalanced"):
        post_one_leg()

    assert LedgerTransaction.objects.count() == 1  # only the funding adjustment
    assert LedgerEntry.objects.count() == 2


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_entry SET amount = amount * 2",
        "DELETE FROM ledger_entry",
        "UPDATE ledger_transaction SET memo = 'rewritten'",
        "DELETE FROM ledger_transaction",
    ],
)
def test_entries_and_transactions_cannot_be_rewritten(funded_tenant, statement):
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)

    assert LedgerEntry.objects.count() == 2
    assert LedgerTransaction.objects.get().memo == "test"
    assert ledger_verify() == []


def test_a_payment_settled_by_racing_threads_credits_once(funded_tenant):
    count = 6
    barrier = threading.Barrier(count)
    source_id = uuid.uuid4()
    posted: list[uuid.UUID] = []
    errors: list[BaseException] = []

    def settle() -> None:
        try:
            barrier.wait(timeout=30)
            with transaction.atomic():
                row = ledger_payment_settled(
                    tenant_id=funded_tenant.pk,
                    currency="UGX",
                    amount=Decimal(1000),
                    fee=Decimal(15),
                    source_id=source_id,
                )
            posted.append(row.pk)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=settle) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert len(posted) == count
    assert len(set(posted)) == 1
    assert balance_get(tenant_id=funded_tenant.pk, currency="UGX").available == 10 + 985
    assert LedgerTransaction.objects.filter(type="payment").count() == 1
    assert ledger_verify() == []
