"""Currencies the gateway supports, their decimals, and how an amount is shown.

The one place these rules live: payments (``payments.money``) and the ledger both use it.
"""

from __future__ import annotations

from decimal import Decimal

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
