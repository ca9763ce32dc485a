"""Money: the currencies the gateway supports, their decimals, exact parsing and formatting.

Amounts are ``Decimal`` from the wire to the database; a float never touches money. The one
place these rules live: payments, the ledger and the balance adjustments all use them.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from django.conf import settings

# Decimals per currency (ISO 4217 minor units as MTN's markets use them). The contract:
# UGX, RWF, XAF, XOF have none; ZMW, GHS, EUR and the rest have two.
CURRENCY_DECIMALS: dict[str, int] = {
    "UGX": 0,
    "RWF": 0,
    "XAF": 0,
    "XOF": 0,
    "ZMW": 2,
    "GHS": 2,
    "EUR": 2,
    "ZAR": 2,
    "SZL": 2,
    "LRD": 2,
    "NGN": 2,
    "SSP": 2,
    "USD": 2,
}
SUPPORTED_CURRENCIES = tuple(sorted(CURRENCY_DECIMALS))


def currency_decimals(currency: str) -> int:
    """The currency's number of decimals (2 for one the table does not name)."""
    return CURRENCY_DECIMALS.get(currency, 2)


def format_amount(amount: Decimal, currency: str) -> str:
    """The amount as the API shows it: a string with exactly the currency's decimals."""
    return str(amount.quantize(Decimal(1).scaleb(-currency_decimals(currency))))


_DECIMAL_STRING_RE = re.compile(r"-?[0-9]+(\.[0-9]+)?", re.ASCII)
_MAX_DIGITS = 30


class MoneyError(ValueError):
    """An amount or currency the gateway refuses, with a message for the merchant."""


def parse_currency(value: object) -> str:
    if not isinstance(value, str):
        raise MoneyError("Must be a string holding an ISO 4217 currency code.")
    if value not in CURRENCY_DECIMALS:
        raise MoneyError(
            f"Unsupported currency {value[:8]!r}; supported: {', '.join(SUPPORTED_CURRENCIES)}."
        )
    return value


def amount_text(value: object) -> str:
    """The amount as the merchant wrote it: a JSON number's literal text or a string."""
    if isinstance(value, bool) or value is None:
        raise MoneyError("Must be a number or a decimal string.")
    if isinstance(value, str):
        if value == "":
            raise MoneyError("Must not be empty.")
        return value
    if isinstance(value, int | float):
        # The API's JSON parser keeps each number's literal text (gateway.parsers).
        return getattr(value, "text", repr(value))
    raise MoneyError("Must be a number or a decimal string.")


def parse_amount(value: object, currency: str | None) -> Decimal:
    """Parse an amount exactly, by the contract's rules.

    Accepts a JSON number or a decimal string, greater than zero, with no more decimals
    than the currency has once trailing zeros are dropped (``"1000.0"`` UGX is 1000), and at
    most ``PAYMENT_MAX_AMOUNT``. Exponents, NaN, Infinity, booleans, signs other than a
    leading minus (reported as not positive) and empty strings are refused.
    """
    text = amount_text(value)
    if len(text) > _MAX_DIGITS:
        raise MoneyError("Too many digits.")
    if not _DECIMAL_STRING_RE.fullmatch(text):  # fullmatch: "$" also matches before a "\n"
        raise MoneyError(
            'Must be a plain decimal number such as 1000 or "12.50" '
            "(no exponent, sign, spaces or separators)."
        )
    try:
        amount = Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the pattern above rules this out
        raise MoneyError("Not a decimal number.") from exc
    if amount <= 0:
        raise MoneyError("Must be greater than zero.")
    if amount > settings.PAYMENT_MAX_AMOUNT:
        raise MoneyError(f"Must be at most {settings.PAYMENT_MAX_AMOUNT}.")
    if currency is not None:
        allowed = CURRENCY_DECIMALS[currency]
        exponent = amount.normalize().as_tuple().exponent
        decimals = max(0, -int(exponent))
        if decimals > allowed:
            raise MoneyError(
                f"{currency} amounts have at most {allowed} decimal place"
                f"{'' if allowed == 1 else 's'}."
            )
        return amount.quantize(Decimal(1).scaleb(-allowed))
    return amount


def same_amount(left: Decimal | None, right: Decimal | None) -> bool:
    """Compare as money, not text: MTN echoes ``"12.50"`` back as ``"12.5"``."""
    return left is not None and right is not None and left.compare(right) == 0
