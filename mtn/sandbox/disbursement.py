"""Disbursement (reference section 5): transfers, and refunds of collections.

A refund (``POST /disbursement/v1_0/refund``) names the collection it pays back in
``referenceIdToRefund`` and has no payee: the money goes to that collection's payer, and
the status body shows them as ``payee``. Like every MTN transaction call it is accepted
(202) whenever the request itself is well formed; a refund MTN cannot make fails later:
FAILED with TRANSACTION_NOT_FOUND when it knows no such collection, and with MTN's generic
INTERNAL_PROCESSING_ERROR (its reason "when there is no specific error mapping") when that
collection is not SUCCESSFUL, is in another currency, or would pay back more than it took,
counting earlier refunds that did not fail.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from . import transactions
from .scenarios import (
    FAILED,
    SUCCESSFUL,
    Outcome,
    party_not_found,
    refund_outcome,
    transaction_outcome,
)
from .state import ApiUser, SandboxState
from .transactions import Decision, Kind
from .wire import Reply, validate_money_and_texts, validate_party

if TYPE_CHECKING:
    from .app import Sandbox


def _validate_transfer(data: Any) -> str | None:
    return validate_money_and_texts(data) or validate_party(data, "payee")


def _decide_transfer(state: SandboxState, data: dict[str, Any]) -> Decision:
    payee = data["payee"]
    outcome = party_not_found("transfer", payee) or transaction_outcome(
        "transfer", payee["partyId"], sandbox=state.is_sandbox
    )
    return Decision(party=payee, outcome=outcome)


TRANSFER = Kind(
    name="transfer",
    product="disbursement",
    party_key="payee",
    validate=_validate_transfer,
    decide=_decide_transfer,
)


def _validate_refund(data: Any) -> str | None:
    problem = validate_money_and_texts(data)
    if problem:
        return problem
    reference = data.get("referenceIdToRefund")
    if not isinstance(reference, str) or not reference.strip():
        return "referenceIdToRefund must be a string."
    return None


def _decide_refund(state: SandboxState, data: dict[str, Any]) -> Decision:
    original_ref = data["referenceIdToRefund"].strip().lower()
    original = state.transactions.get(original_ref)
    if original is None or original.kind != "requesttopay":
        return Decision(
            party={},
            outcome=Outcome(FAILED, "TRANSACTION_NOT_FOUND"),
            reference_id_to_refund=original_ref,
        )
    state.refresh(original)
    refused = Outcome(FAILED, "INTERNAL_PROCESSING_ERROR")
    outcome: Outcome | None = None
    if original.status != SUCCESSFUL or data["currency"] != original.request["currency"]:
        outcome = refused
    else:
        already = Decimal(0)
        for tx in state.transactions.values():
            if tx.kind == "refund" and tx.reference_id_to_refund == original_ref:
                state.refresh(tx)
                if tx.status != FAILED:
                    already += tx.amount
        if already + Decimal(data["amount"]) > original.amount:
            outcome = refused
    return Decision(
        party=dict(original.party),
        outcome=outcome or refund_outcome(original.party_id, sandbox=state.is_sandbox),
        reference_id_to_refund=original_ref,
    )


REFUND = Kind(
    name="refund",
    product="disbursement",
    party_key="payee",
    validate=_validate_refund,
    decide=_decide_refund,
    party_in_body=False,
)

_KINDS = {"transfer": TRANSFER, "refund": REFUND}


def route(
    sim: Sandbox, method: str, rest: list[str], user: ApiUser | None, headers: Any, body: bytes
) -> Reply | None:
    """``rest`` is the path after ``/disbursement/v1_0``; None when it is not ours."""
    if not rest or rest[0] not in _KINDS:
        return None
    kind = _KINDS[rest[0]]
    if len(rest) == 1 and method == "POST":
        return transactions.create(sim, kind, user, headers, body)
    if len(rest) == 2 and method == "GET":
        return transactions.status(sim, kind, user, rest[1])
    return None
