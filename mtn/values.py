"""The values MTN calls give and take, normalised: credentials, submit results, statuses,
balances, account-holder names and account checks. No I/O here."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

PRODUCTS = ("collection", "disbursement")

STATUS_PENDING = "PENDING"
STATUS_SUCCESSFUL = "SUCCESSFUL"
STATUS_FAILED = "FAILED"
FINAL_STATUSES = frozenset({STATUS_SUCCESSFUL, STATUS_FAILED})

# MTN caps payerMessage/payeeNote at 160 characters and rejects "unsupported special
# characters" with a 400 (apostrophe documented; '&' in sparkplug/momoapi-node#84). We keep
# letters (any script), digits, spaces and plain punctuation only.
TEXT_MAX_LENGTH = 160
_TEXT_DISALLOWED = re.compile(r"[^\w .,:\-/()#!?@+]", re.UNICODE)
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class MtnCredentials:
    subscription_key: str = field(repr=False)
    api_user: str
    api_key: str = field(repr=False)


@dataclass(frozen=True)
class SubmitResult:
    """Outcome of a request-to-pay, transfer or refund POST.

    ``already_existed`` is True when MTN answered 409 ``RESOURCE_ALREADY_EXIST`` for our
    reference: an earlier attempt landed, so the transaction exists and must be polled.
    """

    already_existed: bool


@dataclass(frozen=True)
class Balance:
    available: Decimal
    currency: str


@dataclass(frozen=True)
class ProductCheck:
    """One product of an account, checked with MTN (see :meth:`MtnClient.check_product`)."""

    product: str
    ok: bool
    balance: Decimal | None = None
    currency: str | None = None
    code: str | None = None  # MTN's code (or ours) when not ok
    problem: str | None = None  # in words, for an operator; never a secret

    def as_dict(self) -> dict[str, Any]:
        if self.ok:
            return {"ok": True, "balance": str(self.balance), "currency": self.currency}
        return {"ok": False, "code": self.code, "error": self.problem}


@dataclass(frozen=True)
class AccountCheck:
    account: str
    target_environment: str
    checks: tuple[ProductCheck, ...]

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    def as_dict(self) -> dict[str, Any]:
        """``{"account": NAME, "collection": {"ok": true, "balance", "currency"}, ...}``."""
        result: dict[str, Any] = {"account": self.account}
        for check in self.checks:
            result[check.product] = check.as_dict()
        return result


@dataclass(frozen=True)
class AccountHolderInfo:
    """The name of a MoMo account holder, and nothing else MTN told about them."""

    name: str | None
    given_name: str | None = None
    family_name: str | None = None

    @classmethod
    def from_mtn(cls, body: dict[str, Any]) -> AccountHolderInfo:
        given = _name_part(body.get("given_name"))
        family = _name_part(body.get("family_name"))
        name = _name_part(body.get("name"))
        if name is None and (given or family):
            name = " ".join(part for part in (given, family) if part)
        return cls(name=name, given_name=given, family_name=family)


def _name_part(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    cleaned = " ".join(value.split())[:200]
    return cleaned or None


@dataclass(frozen=True)
class TransactionStatus:
    """A status-endpoint (or callback) body, normalised. ``raw`` keeps MTN's JSON as received."""

    status: str
    raw_status: str | None
    amount: Decimal | None
    currency: str | None
    external_id: str | None
    financial_transaction_id: str | None
    party_id: str | None
    reason_code: str | None
    reason_message: str | None
    raw: dict[str, Any] = field(repr=False)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


def as_text(value: Any) -> str | None:
    """A string or number as text; anything else (dict, list, bool, None) as None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float | Decimal):
        return str(value)
    return None


def as_decimal(value: Any) -> Decimal | None:
    # MTN's spec says string, its own example shows a number; accept both (section 4.2).
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float):
        value = repr(value)
    if not isinstance(value, str | int | Decimal):
        return None
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() else None


def parse_transaction_status(body: dict[str, Any]) -> TransactionStatus:
    """Normalise MTN's status JSON (status endpoint and callbacks share it, section 8.1).

    ``CREATED`` and any unknown status map to PENDING (never final). ``reason`` may be a plain
    string (what the live platform sends) or ``{code, message}`` (the OpenAPI spec). Odd field
    types are tolerated; only a non-dict body raises ``ValueError``.
    """
    if not isinstance(body, dict):
        raise ValueError(f"MTN status body must be a JSON object, not {type(body).__name__}")
    raw_status = as_text(body.get("status"))
    normalised = raw_status.strip().upper() if raw_status else ""
    status = normalised if normalised in FINAL_STATUSES else STATUS_PENDING

    reason_code: str | None = None
    reason_message: str | None = None
    reason = body.get("reason")
    if isinstance(reason, dict):
        reason_code = as_text(reason.get("code"))
        reason_message = as_text(reason.get("message"))
    else:
        reason_code = as_text(reason)
    reason_code = reason_code or None

    party_id = None
    for key in ("payer", "payee"):
        party = body.get(key)
        if isinstance(party, dict) and as_text(party.get("partyId")):
            party_id = as_text(party.get("partyId"))
            break

    currency = as_text(body.get("currency"))
    return TransactionStatus(
        status=status,
        raw_status=raw_status,
        amount=as_decimal(body.get("amount")),
        currency=currency.strip().upper() if currency else None,
        external_id=as_text(body.get("externalId")),
        financial_transaction_id=as_text(body.get("financialTransactionId")) or None,
        party_id=party_id,
        reason_code=reason_code,
        reason_message=reason_message,
        raw=dict(body),
    )


def sanitize_text(value: str | None) -> str | None:
    """payerMessage/payeeNote as MTN accepts them, or None when nothing is left to send."""
    if value is None:
        return None
    cleaned = _TEXT_DISALLOWED.sub("", str(value))
    cleaned = _WHITESPACE.sub(" ", cleaned).strip()
    cleaned = cleaned[:TEXT_MAX_LENGTH].rstrip()
    return cleaned or None
