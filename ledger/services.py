"""Writes to the ledger: every posting of the gateway's money goes through this module.

Guarantees shared by every function here:

- Keyword-only arguments; each joins the caller's transaction (``transaction.atomic``
  nests as a savepoint) and makes no network call.
- Idempotent per (source_object, source_id, type): the unique constraint decides; a second
  call returns the transaction already posted and changes no balance.
- A posting either writes its transaction, all its entries and every account's new balance,
  or nothing at all (it raises).
- Overdraft is impossible: a debit of an account that must not go negative (a tenant's
  available or reserved money, the platform's fees) is a conditional ``UPDATE ... WHERE
  balance >= x`` (zero rows = not enough), with ``CHECK (balance >= 0)`` behind it.
- Deadlock-free: the accounts a posting changes are updated in ascending id order. A
  tenant's ``available`` and ``reserved`` accounts are created together in one statement,
  available first, so available's id is always the smaller of the two.
- The platform's accounts are striped (``ledger.models.PLATFORM_STRIPES``): a tenant's
  postings use the platform rows of its own stripe, so that tenants settling at once do not
  all queue on one ``fees`` and one ``mtn_collection`` row per currency.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Round
from django.utils import timezone

from gateway.audit import Actor, audit_event
from gateway.money import CURRENCY_DECIMALS, format_amount
from ledger.errors import InsufficientFunds, LedgerInvariantError
from ledger.models import (
    AMOUNT_DECIMALS,
    NON_NEGATIVE_KINDS,
    TENANT_KINDS,
    AccountKind,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    SourceObject,
    TransactionType,
    platform_stripe,
)
from ledger.selectors import balance_get

RESERVING_SOURCES = (SourceObject.PAYOUT.value, SourceObject.REFUND.value)
MAX_REASON_LENGTH = 500


@dataclass(frozen=True)
class _Leg:
    kind: AccountKind
    amount: Decimal


# --- the postings ----------------------------------------------------------------------------


def ledger_payment_settled(
    *,
    tenant_id: uuid.UUID,
    currency: str,
    amount: Decimal,
    fee: Decimal,
    source_id: uuid.UUID,
) -> LedgerTransaction:
    """A payment became SUCCESSFUL: the money that came in through the platform's MTN
    collection wallet is owed to the tenant, less the fee, which the platform keeps.

    Type ``payment``; statement figures ``amount``, ``fee``, ``net = amount - fee``.
    Raises ``ValueError`` for a non-positive amount or a fee outside 0..amount.
    """
    _check_amount(amount, currency)
    if not (0 <= fee <= amount):
        raise ValueError(f"fee must be within 0..amount, not {fee}")
    _check_decimals(fee, currency)
    return _post(
        type=TransactionType.PAYMENT,
        tenant_id=tenant_id,
        currency=currency,
        amount=amount,
        fee=fee,
        source_object=SourceObject.PAYMENT,
        source_id=source_id,
        legs=[
            _Leg(AccountKind.MTN_COLLECTION, -amount),
            _Leg(AccountKind.AVAILABLE, amount - fee),
            _Leg(AccountKind.FEES, fee),
        ],
    )


def ledger_reserve(
    *,
    tenant_id: uuid.UUID,
    currency: str,
    amount: Decimal,
    source_object: str,
    source_id: uuid.UUID,
) -> LedgerTransaction:
    """Set ``amount`` of the tenant's available money aside for a payout or refund.

    Type ``source_object`` (``payout`` or ``refund``); the statement shows ``-amount``.
    Raises ``InsufficientFunds`` when the available balance is smaller (a missing account
    is a zero balance), having written nothing.

    On the payout-create hot path: on PostgreSQL the debit, the transaction, the credit of
    ``reserved`` and both entries are one statement (one round trip, no SELECT before the
    debit). The debit is the conditional UPDATE, so concurrent reserves are accepted
    exactly as far as the balance goes.
    """
    _check_amount(amount, currency)
    source = _reserving_source(source_object)
    if connection.vendor == "postgresql":
        return _reserve_in_one_statement(
            tenant_id=tenant_id,
            currency=currency,
            amount=amount,
            source_object=source,
            source_id=source_id,
        )
    return _post(
        type=TransactionType(source),
        tenant_id=tenant_id,
        currency=currency,
        amount=-amount,
        fee=Decimal(0),
        source_object=SourceObject(source),
        source_id=source_id,
        legs=[_Leg(AccountKind.AVAILABLE, -amount), _Leg(AccountKind.RESERVED, amount)],
    )


def ledger_reserve_batch(
    *,
    tenant_id: uuid.UUID,
    currency: str,
    amount: Decimal,
    source_id: uuid.UUID,
) -> LedgerTransaction:
    """Set a payout batch's total aside in one posting: one statement row for the batch.

    Type ``payout`` with source ``payout_batch`` (``source_id`` is the batch's id); the
    statement shows ``-amount``, as for one payout of the total. Each item is later given
    back (``ledger_release``, type ``payout_failure``) or settled (``ledger_settle``) under
    its own ``payout`` source, from the ``reserved`` money this posting put there, so the
    reserved balance always equals what the batch's items still in flight hold. Raises
    ``InsufficientFunds`` when the available balance is smaller, having written nothing;
    the conditional debit makes concurrent reserves (batches and single payouts alike) go
    exactly as far as the balance.
    """
    _check_amount(amount, currency)
    return _post(
        type=TransactionType.PAYOUT,
        tenant_id=tenant_id,
        currency=currency,
        amount=-amount,
        fee=Decimal(0),
        source_object=SourceObject.PAYOUT_BATCH,
        source_id=source_id,
        legs=[_Leg(AccountKind.AVAILABLE, -amount), _Leg(AccountKind.RESERVED, amount)],
    )


def ledger_release(
    *,
    tenant_id: uuid.UUID,
    currency: str,
    amount: Decimal,
    source_object: str,
    source_id: uuid.UUID,
) -> LedgerTransaction:
    """A payout or refund FAILED: its reservation goes back to the available balance.

    Type ``<source_object>_failure``; the statement shows ``+amount``. Raises
    ``LedgerInvariantError`` if less than ``amount`` is reserved (a bug, never input).
    """
    _check_amount(amount, currency)
    source = _reserving_source(source_object)
    return _post(
        type=TransactionType(f"{source}_failure"),
        tenant_id=tenant_id,
        currency=currency,
        amount=amount,
        fee=Decimal(0),
        source_object=SourceObject(source),
        source_id=source_id,
        legs=[_Leg(AccountKind.RESERVED, -amount), _Leg(AccountKind.AVAILABLE, amount)],
    )


def ledger_settle(
    *,
    tenant_id: uuid.UUID,
    currency: str,
    amount: Decimal,
    source_object: str,
    source_id: uuid.UUID,
) -> LedgerTransaction:
    """A payout or refund SUCCEEDED: the reserved money left through the platform's MTN
    disbursement wallet.

    Type ``<source_object>_settled``, an internal type: it does not touch ``available``
    (its statement figures are zero) and is not listed on the tenant's statement. Raises
    ``LedgerInvariantError`` if less than ``amount`` is reserved.
    """
    _check_amount(amount, currency)
    source = _reserving_source(source_object)
    return _post(
        type=TransactionType(f"{source}_settled"),
        tenant_id=tenant_id,
        currency=currency,
        amount=Decimal(0),
        fee=Decimal(0),
        source_object=SourceObject(source),
        source_id=source_id,
        legs=[_Leg(AccountKind.RESERVED, -amount), _Leg(AccountKind.MTN_DISBURSEMENT, amount)],
    )


def ledger_adjust(
    *,
    tenant_id: uuid.UUID,
    currency: str,
    amount: Decimal,
    reason: str,
    actor: Actor,
) -> LedgerTransaction:
    """Credit (positive ``amount``) or debit (negative) the tenant's available balance by
    hand, e.g. a tenant pre-funding its payouts. The counterparty is the platform's
    ``funding`` account.

    Type ``adjustment`` with a new source id, so every call posts. Raises
    ``InsufficientFunds`` for a debit larger than the available balance and ``ValueError``
    for a zero amount, too many decimals or an empty reason; either way nothing is written.
    Audited: the event (``ledger_adjustment``) is written in the same transaction.
    """
    if amount == 0:
        raise ValueError("An adjustment must not be zero.")
    _check_decimals(amount, currency)
    reason = reason.strip()
    if not reason:
        raise ValueError("An adjustment needs a reason.")
    if len(reason) > MAX_REASON_LENGTH:
        raise ValueError(f"The reason must be at most {MAX_REASON_LENGTH} characters.")
    with transaction.atomic():
        posted = _post(
            type=TransactionType.ADJUSTMENT,
            tenant_id=tenant_id,
            currency=currency,
            amount=amount,
            fee=Decimal(0),
            source_object=SourceObject.ADJUSTMENT,
            source_id=uuid.uuid4(),
            memo=reason,
            legs=[_Leg(AccountKind.FUNDING, -amount), _Leg(AccountKind.AVAILABLE, amount)],
        )
        event = audit_event(
            tenant=None,
            object_type="ledger_transaction",
            object_id=posted.pk,
            action="ledger_adjustment",
            actor=actor,
            data={"currency": currency, "amount": str(amount), "reason": reason},
        )
        # The trail names the tenant by id: the ledger does not import the Tenant model.
        event.tenant_id = tenant_id
        event.save(force_insert=True)
    return posted


def ledger_correction(
    *,
    tenant_id: uuid.UUID,
    currency: str,
    source_object: str,
    source_id: uuid.UUID,
    changes: dict[AccountKind, Decimal],
    fee: Decimal,
    reason: str,
) -> LedgerTransaction:
    """Post what a person's acceptance of MTN's final status changes: ``changes`` maps each
    account kind to the amount added to it (they must sum to zero), ``fee`` the change of the
    platform's fee as the statement shows it.

    Type ``correction``; every call posts (an object MTN contradicts again after a
    correction is corrected again): the caller guards against doing it twice. The statement
    shows ``net`` = the change of ``available`` and ``amount = net + fee``. Raises
    ``InsufficientFunds`` when it would take more than the tenant's available balance,
    ``LedgerInvariantError`` when another account would go negative, ``ValueError`` for an
    empty reason or a change with too many decimals; then nothing is written.
    """
    reason = reason.strip()
    if not reason:
        raise ValueError("A correction needs a reason.")
    for amount in (*changes.values(), fee):
        _check_decimals(amount, currency)
    net = changes.get(AccountKind.AVAILABLE, Decimal(0))
    return _post(
        type=TransactionType.CORRECTION,
        tenant_id=tenant_id,
        currency=currency,
        amount=net + fee,
        fee=fee,
        source_object=SourceObject(source_object),
        source_id=source_id,
        memo=reason[:MAX_REASON_LENGTH],
        legs=[_Leg(kind, amount) for kind, amount in changes.items() if amount != 0],
    )


# --- checks ----------------------------------------------------------------------------------


def _check_amount(amount: Decimal, currency: str) -> None:
    if not amount > 0:
        raise ValueError(f"amount must be greater than zero, not {amount}")
    _check_decimals(amount, currency)


def _check_decimals(amount: Decimal, currency: str) -> None:
    if currency not in CURRENCY_DECIMALS:
        raise ValueError(f"unsupported currency {currency!r}")
    if not amount.is_finite():
        raise ValueError(f"amount must be finite, not {amount}")
    exponent = int(amount.normalize().as_tuple().exponent)
    if max(0, -exponent) > CURRENCY_DECIMALS[currency]:
        raise ValueError(f"{currency} amounts have at most {CURRENCY_DECIMALS[currency]} decimals")


def _reserving_source(source_object: str) -> str:
    if source_object not in RESERVING_SOURCES:
        raise ValueError(f"source_object must be payout or refund, not {source_object!r}")
    return source_object


# --- the general posting ---------------------------------------------------------------------


def _post(
    *,
    type: TransactionType,
    tenant_id: uuid.UUID,
    currency: str,
    amount: Decimal,
    fee: Decimal,
    source_object: SourceObject,
    source_id: uuid.UUID,
    legs: list[_Leg],
    memo: str = "",
) -> LedgerTransaction:
    """Post one balanced transaction, or return the one already posted for its source."""
    if sum((leg.amount for leg in legs), Decimal(0)) != 0:
        raise LedgerInvariantError(f"unbalanced legs for {type}: {legs}")
    with transaction.atomic():
        posted = LedgerTransaction(
            type=type,
            tenant_id=tenant_id,
            currency=currency,
            amount=amount,
            fee=fee,
            net=amount - fee,
            source_object=source_object,
            source_id=source_id,
            memo=memo,
        )
        try:
            with transaction.atomic():
                posted.save(force_insert=True)
        except IntegrityError:
            existing = _existing(source_object=source_object, source_id=source_id, type=type)
            if existing is None:
                raise
            return existing
        accounts = _account_ids(
            tenant_id=tenant_id, currency=currency, kinds={leg.kind for leg in legs}
        )
        entries = []
        for account_id, leg in sorted(
            ((accounts[leg.kind], leg) for leg in legs if leg.amount != 0),
            key=lambda pair: pair[0],
        ):
            _apply(account_id=account_id, leg=leg, currency=currency)
            entries.append(
                LedgerEntry(transaction=posted, account_id=account_id, amount=leg.amount)
            )
        LedgerEntry.objects.bulk_create(entries)
    return posted


def _apply(*, account_id: int, leg: _Leg, currency: str) -> None:
    """Add the leg to its account's balance; a debit that would overdraw changes nothing."""
    rows = LedgerAccount.objects.filter(pk=account_id)
    if leg.amount < 0 and leg.kind in NON_NEGATIVE_KINDS:
        rows = rows.filter(balance__gte=-leg.amount)
    changed = rows.update(
        # ROUND: SQLite does decimal arithmetic in floats; rounding to the stored places keeps
        # a balance exact (0.3 - 0.1 - 0.2 is 0, not -2.8e-17). A no-op on PostgreSQL.
        balance=Round(F("balance") + leg.amount, AMOUNT_DECIMALS),
        version=F("version") + 1,
        updated_at=timezone.now(),
    )
    if changed:
        return
    if leg.kind == AccountKind.AVAILABLE:
        raise _insufficient(
            available=LedgerAccount.objects.get(pk=account_id).balance,
            amount=-leg.amount,
            currency=currency,
        )
    raise LedgerInvariantError(f"{leg.kind} {currency} account {account_id} would go negative")


def _existing(*, source_object: str, source_id: uuid.UUID, type: str) -> LedgerTransaction | None:
    return LedgerTransaction.objects.filter(
        source_object=source_object, source_id=source_id, type=type
    ).first()


def _account_ids(
    *, tenant_id: uuid.UUID, currency: str, kinds: Iterable[AccountKind]
) -> dict[AccountKind, int]:
    """The ids of the accounts a posting needs (the platform's of the tenant's stripe),
    creating those that do not exist yet."""
    wanted = set(kinds)
    stripe = platform_stripe(tenant_id)
    found = _find_accounts(tenant_id=tenant_id, currency=currency, kinds=wanted, stripe=stripe)
    if len(found) < len(wanted):
        missing = wanted - set(found)
        if missing & set(TENANT_KINDS):
            # Both together, available first: its id is then the smaller one (see above).
            LedgerAccount.objects.bulk_create(
                [
                    LedgerAccount(tenant_id=tenant_id, currency=currency, kind=kind)
                    for kind in TENANT_KINDS
                ],
                ignore_conflicts=True,
            )
        platform = sorted(missing - set(TENANT_KINDS))
        if platform:
            LedgerAccount.objects.bulk_create(
                [
                    LedgerAccount(tenant_id=None, currency=currency, kind=kind, stripe=stripe)
                    for kind in platform
                ],
                ignore_conflicts=True,
            )
        found = _find_accounts(tenant_id=tenant_id, currency=currency, kinds=wanted, stripe=stripe)
    return found


def _find_accounts(
    *, tenant_id: uuid.UUID, currency: str, kinds: set[AccountKind], stripe: int
) -> dict[AccountKind, int]:
    tenant_kinds = [kind.value for kind in kinds if kind in TENANT_KINDS]
    platform_kinds = [kind.value for kind in kinds if kind not in TENANT_KINDS]
    rows = LedgerAccount.objects.filter(currency=currency).filter(
        _tenant_q(tenant_id, tenant_kinds) | _platform_q(platform_kinds, stripe)
    )
    return {AccountKind(kind): pk for pk, kind in rows.values_list("pk", "kind")}


def _tenant_q(tenant_id: uuid.UUID, kinds: list[str]) -> Q:
    return Q(tenant_id=tenant_id, kind__in=kinds) if kinds else Q(pk__in=[])


def _platform_q(kinds: list[str], stripe: int) -> Q:
    return Q(tenant_id__isnull=True, kind__in=kinds, stripe=stripe) if kinds else Q(pk__in=[])


# --- the hot path on PostgreSQL --------------------------------------------------------------

# Debit available only if it covers the amount and only if this source has not been
# reserved yet; record the transaction; credit reserved; write both entries. One statement,
# so one round trip. The transaction's insert reads from `debit`, the credit from `txn`, so a
# refused debit writes nothing at all.
_RESERVE_SQL = """
WITH debit AS (
    UPDATE ledger_account
       SET balance = balance - %(amount)s, version = version + 1, updated_at = %(now)s
     WHERE tenant_id = %(tenant_id)s AND currency = %(currency)s AND kind = 'available'
       AND balance >= %(amount)s
       AND NOT EXISTS (
           SELECT 1 FROM ledger_transaction
            WHERE source_object = %(source_object)s AND source_id = %(source_id)s
              AND type = %(source_object)s)
    RETURNING id
), txn AS (
    INSERT INTO ledger_transaction
        (id, type, tenant_id, currency, amount, fee, net, source_object, source_id, memo,
         created_at)
    SELECT %(id)s, %(source_object)s, %(tenant_id)s, %(currency)s, -%(amount)s, 0,
           -%(amount)s, %(source_object)s, %(source_id)s, '', %(now)s
      FROM debit
    RETURNING id
), credit AS (
    UPDATE ledger_account
       SET balance = balance + %(amount)s, version = version + 1, updated_at = %(now)s
     WHERE tenant_id = %(tenant_id)s AND currency = %(currency)s AND kind = 'reserved'
       AND EXISTS (SELECT 1 FROM txn)
    RETURNING id
), entries AS (
    INSERT INTO ledger_entry (transaction_id, account_id, amount, created_at)
    SELECT txn.id, debit.id, -%(amount)s, %(now)s FROM txn, debit
    UNION ALL
    SELECT txn.id, credit.id, %(amount)s, %(now)s FROM txn, credit
    RETURNING id
)
SELECT (SELECT count(*) FROM debit), (SELECT count(*) FROM entries)
"""


def _reserve_in_one_statement(
    *,
    tenant_id: uuid.UUID,
    currency: str,
    amount: Decimal,
    source_object: str,
    source_id: uuid.UUID,
) -> LedgerTransaction:
    posted = LedgerTransaction(
        id=uuid.uuid4(),
        type=source_object,
        tenant_id=tenant_id,
        currency=currency,
        amount=-amount,
        fee=Decimal(0),
        net=-amount,
        source_object=source_object,
        source_id=source_id,
        memo="",
        created_at=timezone.now(),
    )
    params: dict[str, uuid.UUID | str | Decimal | datetime] = {
        "id": posted.id,
        "tenant_id": tenant_id,
        "currency": currency,
        "amount": amount,
        "source_object": source_object,
        "source_id": source_id,
        "now": posted.created_at,
    }
    with connection.cursor() as cursor:
        cursor.execute(_RESERVE_SQL, params)
        row = cursor.fetchone()
    debited, entries = (int(row[0]), int(row[1])) if row else (0, 0)
    if debited and entries == 2:
        posted._state.adding = False
        posted._state.db = connection.alias
        return posted
    if debited:  # pragma: no cover - available exists without reserved: never created so
        raise LedgerInvariantError(f"tenant {tenant_id} has no reserved {currency} account")
    existing = _existing(source_object=source_object, source_id=source_id, type=source_object)
    if existing is not None:
        return existing
    raise _insufficient(
        available=balance_get(tenant_id=tenant_id, currency=currency).available,
        amount=amount,
        currency=currency,
    )


def _insufficient(*, available: Decimal, amount: Decimal, currency: str) -> InsufficientFunds:
    # Say what is available, so that the merchant (or operator) knows what would go through.
    return InsufficientFunds(
        f"The available {currency} balance is {format_amount(available, currency)}, smaller "
        f"than {format_amount(amount, currency)}: nothing was done. Add funds, or ask for at "
        "most the available amount (an API request with a new Idempotency-Key)."
    )
