"""The collection fee: one rule, in one place."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

HUNDRED = Decimal(100)


def collection_fee(*, amount: Decimal, percent: Decimal, decimals: int) -> Decimal:
    """``amount * percent / 100`` rounded half-up to ``decimals`` places.

    ``amount`` must be zero or more and ``percent`` within 0..100, so that the fee is
    between zero and the amount (at 100 % it is the whole amount). Raises ``ValueError``
    otherwise. Decimal arithmetic is exact here: the product of two finite decimals needs
    no rounding before the final quantize (the default context's 28 digits hold it).
    """
    if amount < 0:
        raise ValueError(f"amount must not be negative, not {amount}")
    if not (0 <= percent <= HUNDRED):
        raise ValueError(f"percent must be within 0..100, not {percent}")
    if decimals < 0:
        raise ValueError(f"decimals must not be negative, not {decimals}")
    exact = amount * percent / HUNDRED
    return exact.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
