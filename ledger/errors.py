"""The ledger's errors."""

from __future__ import annotations

from rest_framework import status

from gateway.errors import GatewayError


class InsufficientFunds(GatewayError):
    """A debit larger than the tenant's available balance; nothing was written."""

    code = "insufficient_funds"
    # gateway.errors leaves http_status unannotated, so mypy pins it to Literal[400] there.
    http_status = status.HTTP_422_UNPROCESSABLE_ENTITY  # type: ignore[assignment]
    default_message = "The available balance is too small for this amount."


class LedgerInvariantError(Exception):
    """A posting that would break the ledger's rules (a programming error, never input).

    For example releasing more than is reserved. Not a ``GatewayError``: it must surface as
    a 500 and be fixed, not be reported to a merchant as if they had sent bad input.
    """
