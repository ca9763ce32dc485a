"""Collection (reference section 4): request to pay and its status."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import transactions
from .scenarios import transaction_outcome
from .state import ApiUser, SandboxState
from .transactions import Decision, Kind
from .wire import Reply, validate_money_and_texts, validate_party

if TYPE_CHECKING:
    from .app import Sandbox


def _validate(data: Any) -> str | None:
    return validate_money_and_texts(data) or validate_party(data, "payer")


def _decide(state: SandboxState, data: dict[str, Any]) -> Decision:
    payer = data["payer"]
    return Decision(party=payer, outcome=transaction_outcome("requesttopay", payer["partyId"]))


REQUEST_TO_PAY = Kind(
    name="requesttopay",
    product="collection",
    party_key="payer",
    validate=_validate,
    decide=_decide,
)


def route(
    sim: Sandbox, method: str, rest: list[str], user: ApiUser | None, headers: Any, body: bytes
) -> Reply | None:
    """``rest`` is the path after ``/collection/v1_0``; None when it is not ours."""
    if rest == ["requesttopay"] and method == "POST":
        return transactions.create(sim, REQUEST_TO_PAY, user, headers, body)
    if len(rest) == 2 and rest[0] == "requesttopay" and method == "GET":
        return transactions.status(sim, REQUEST_TO_PAY, user, rest[1])
    return None
