"""Disbursement (reference section 5): transfers, and refunds of collections.

A refund (``POST /disbursement/v1_0/refund``) names the collection it pays back in
``referenceIdToRefund`` and has no payee: the money goes to that collection's payer, and
the status body shows them as ``payee``. The simulator refuses, before creating anything,
a refund of a collection it does not know (404 ``RESOURCE_NOT_FOUND``), of one that is not
SUCCESSFUL (409 ``NOT_SUCCESSFULLY_COMPLETED``, MTN's code for acting on a transaction
that did not complete), and one that would pay back more than the collection took, in
another currency (400).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from . import transactions
from .scenarios import FAILED, SUCCESSFUL, refund_outcome, transaction_outcome
from .state import ApiUser, SandboxState
from .transactions import Decision, Kind
from .wire import Reply, bad_request, error, validate_money_and_texts, validate_party

if TYPE_CHECKING:
    from .app import Sandbox


def _validate_transfer(data: Any) -> str | None:
    return validate_money_and_texts(data) or validate_party(data, "payee")


def _decide_transfer(state: SandboxState, data: dict[str, Any]) -> Decision:
    payee = data["payee"]
    return Decision(party=payee, outcome=transaction_outcome("transfer", payee["partyId"]))


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


def _decide_refund(state: SandboxState, data: dict[str, Any]) -> Decision | Reply:
    original_ref = data["referenceIdToRefund"].strip().lower()
    original = state.transactions.get(original_ref)
    if original is None or original.kind != "requesttopay":
        return error(404, "RESOURCE_NOT_FOUND", "The transaction to refund was not found.")
    state.refresh(original)
    if original.status != SUCCESSFUL:
        return error(409, "NOT_SUCCESSFULLY_COMPLETED")
    if data["currency"] != original.request["currency"]:
        return bad_request("currency must be the currency of the refunded transaction.")
    already = Decimal(0)
    for tx in state.transactions.values():
        if tx.kind == "refund" and tx.reference_id_to_refund == original_ref:
            state.refresh(tx)
            if tx.status != FAILED:
                already += tx.amount
    if already + Decimal(data["amount"]) > original.amount:
        return bad_request("amount is more than is left to refund of the transaction.")
    return Decision(
        party=dict(original.party),
        outcome=refund_outcome(original.party_id),
        reference_id_to_refund=original_ref,
    )


REFUND = Kind(
    name="refund",
    product="disbursement",
    party_key="payee",
    validate=_validate_refund,
    decide=_decide_refund,
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
