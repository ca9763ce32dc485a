"""A tenant's balance adjusted by an operator (``balance_adjust``) or support staff (admin).

One place that reads the operator's text by the payments' money rules and posts through the
ledger, so that the command and the admin refuse exactly the same input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from gateway.audit import Actor
from gateway.money import MoneyError, format_amount, parse_amount, parse_currency
from ledger.errors import InsufficientFunds
from ledger.selectors import Balance, balance_get
from ledger.services import MAX_REASON_LENGTH, ledger_adjust
from tenants.models import Tenant


class AdjustmentRefused(Exception):
    """An adjustment that was not made, with a message for the operator; nothing changed."""


_SIGNED_DECIMAL_RE = re.compile(r"-?[0-9]+(\.[0-9]+)?", re.ASCII)


def parse_signed_amount(text: str, currency: str) -> Decimal:
    """The payments' money rules for the amount without its sign; a leading ``-`` debits.

    Raises ``MoneyError``: ``1.5`` UGX, ``0``, ``1e3`` or ``+5`` are malformed.
    """
    if not _SIGNED_DECIMAL_RE.fullmatch(text):
        # Said here, not by parse_amount: a minus is allowed in an adjustment (it debits).
        raise MoneyError(
            "Must be a plain decimal number such as 5000, -1250 or 12.50: a leading minus "
            "debits; no exponent, plus sign, spaces or separators."
        )
    negative = text.startswith("-")
    amount = parse_amount(text[1:] if negative else text, currency)
    return -amount if negative else amount


@dataclass(frozen=True)
class AdjustmentPreview:
    """What an adjustment would do, for a person to confirm before any money moves."""

    currency: str
    amount: Decimal
    reason: str
    before: Balance

    @property
    def available_after(self) -> Decimal:
        return self.before.available + self.amount


def tenant_balance_adjust_preview(
    *, tenant: Tenant, currency: str, amount: str, reason: str
) -> AdjustmentPreview:
    """Check an adjustment and say what it would do; writes nothing.

    Raises ``AdjustmentRefused`` as ``tenant_balance_adjust`` would now (a debit larger than
    the available balance included); the balance may still move before it is confirmed.
    """
    parsed_currency, parsed_amount, reason = _parse(currency, amount, reason)
    before = balance_get(tenant_id=tenant.pk, currency=parsed_currency)
    if before.available + parsed_amount < 0:
        # Worded as the ledger words its own refusal, with what is available.
        raise AdjustmentRefused(
            f"The available {parsed_currency} balance "
            f"({format_amount(before.available, parsed_currency)}) is smaller than "
            f"{format_amount(-parsed_amount, parsed_currency)}."
        )
    return AdjustmentPreview(
        currency=parsed_currency, amount=parsed_amount, reason=reason, before=before
    )


def tenant_balance_adjust(
    *, tenant: Tenant, currency: str, amount: str, reason: str, actor: Actor
) -> Balance:
    """Credit (positive ``amount``) or debit (negative) the tenant's available balance.

    Returns the balance after it. Raises ``AdjustmentRefused`` for a malformed currency or
    amount, an empty or overlong reason, or a debit larger than the available balance;
    nothing is written then. Audited (``ledger_adjustment``, by ``actor``).
    """
    parsed_currency, parsed_amount, reason = _parse(currency, amount, reason)
    try:
        ledger_adjust(
            tenant_id=tenant.pk,
            currency=parsed_currency,
            amount=parsed_amount,
            reason=reason,
            actor=actor,
        )
    except InsufficientFunds as exc:
        raise AdjustmentRefused(exc.message) from exc
    return balance_get(tenant_id=tenant.pk, currency=parsed_currency)


def _parse(currency: str, amount: str, reason: str) -> tuple[str, Decimal, str]:
    try:
        parsed_currency = parse_currency(currency)
        parsed_amount = parse_signed_amount(amount, parsed_currency)
    except MoneyError as exc:
        raise AdjustmentRefused(f"Malformed amount or currency: {exc}") from exc
    reason = reason.strip()
    if not reason:
        raise AdjustmentRefused("A reason is required.")
    if len(reason) > MAX_REASON_LENGTH:
        raise AdjustmentRefused(f"The reason must be at most {MAX_REASON_LENGTH} characters.")
    return parsed_currency, parsed_amount, reason
