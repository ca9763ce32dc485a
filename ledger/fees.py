"""The collection fee: one rule, in one place."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext

HUNDRED = Decimal(100)


def collection_fee(*, amount: Decimal, percent: Decimal, decimals: int) -> Decimal:
    """``amount * percent / 100`` rounded half-up to ``decimals`` places.

    ``amount`` must be zero or more with at most ``decimals`` places (it is an amount in
    the currency) and ``percent`` within 0..100; the fee is then between zero and the
    amount (at 100 % it is the whole amount). Raises ``ValueError`` otherwise.
    """
    if amount < 0:
        raise ValueError(f"amount must not be negative, not {amount}")
    if not (0 <= percent <= HUNDRED):
        raise ValueError(f"percent must be within 0..100, not {percent}")
    if decimals < 0:
        raise ValueError(f"decimals must not be negative, not {decimals}")
    if max(0, -int(amount.normalize().as_tuple().exponent)) > decimals:
        raise ValueError(f"amount {amount} has more than {decimals} decimals")
    with localcontext() as context:
        # Enough digits that the product is exact: the only rounding is the final one.
        context.prec = 100
        exact = amount * percent / HUNDRED
        return exact.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
