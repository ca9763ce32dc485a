"""Collection (reference section 4): request to pay, its status, and the delivery
notification MTN sends the payer of a completed one."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from . import transactions
from .scenarios import SUCCESSFUL, party_not_found, transaction_outcome
from .state import ApiUser, SandboxState
from .transactions import Decision, Kind
from .wire import (
    MAX_TEXT,
    Reply,
    bad_request,
    error,
    is_uuid,
    json_or_none,
    validate_money_and_texts,
    validate_party,
)

if TYPE_CHECKING:
    from .app import Sandbox

# MTN answers 410 Gone once "the delivery notification opportunity has expired" and 429 when
# "too many attempts for the same ID" were made recently, without saying after how long. The
# simulator's reading: a day after the payment, and one notification a minute per payment.
NOTIFICATION_WINDOW_SECONDS = 24 * 3600.0
NOTIFICATION_INTERVAL_SECONDS = 60.0
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}")  # ISO 639-1 or 639-3


def _validate(data: Any) -> str | None:
    return validate_money_and_texts(data) or validate_party(data, "payer")


def _decide(state: SandboxState, data: dict[str, Any]) -> Decision:
    payer = data["payer"]
    outcome = party_not_found("requesttopay", payer) or transaction_outcome(
        "requesttopay", payer["partyId"], sandbox=state.is_sandbox
    )
    return Decision(party=payer, outcome=outcome)


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


def route_notification(
    sim: Sandbox, method: str, rest: list[str], user: ApiUser | None, headers: Any, body: bytes
) -> Reply | None:
    """``POST /{product}/v1_0/requesttopay/{referenceId}/deliverynotification``."""
    if (
        method == "POST"
        and len(rest) == 3
        and rest[0] == "requesttopay"
        and rest[2] == "deliverynotification"
    ):
        return deliver_notification(sim, user, rest[1], headers, body)
    return None


def deliver_notification(
    sim: Sandbox, user: ApiUser | None, ref: str, headers: Any, body: bytes
) -> Reply:
    """Enqueue a message to the payer of a SUCCESSFUL requesttopay, as MTN defines it: the
    message in the ``notificationMessage`` header (at most 160 characters; MTN's example also
    puts it in the body, which is read when the header is absent), an optional ``Language``;
    200 with no body; 400 bad data, 404 unknown or another API user's reference, 409
    ``NOT_SUCCESSFULLY_COMPLETED`` unless SUCCESSFUL, 410 too late, 429 too soon again.
    """
    if not is_uuid(ref):
        return bad_request("Reference id must be a UUID.")
    data = json_or_none(body) if body.strip() else {}
    if not isinstance(data, dict):
        return bad_request("Body must be a JSON object.")
    message = headers.get("notificationMessage")
    if message is None:
        message = data.get("notificationMessage")
    if not isinstance(message, str) or not message.strip():
        return bad_request("notificationMessage is required.")
    if len(message) > MAX_TEXT:
        return bad_request(f"notificationMessage is longer than {MAX_TEXT} characters.")
    language = headers.get("Language")
    if language is not None and not _LANGUAGE.fullmatch(language):
        return bad_request("Language must be an ISO 639-1 or ISO 639-3 code.")
    now = time.time()
    state = sim.state
    with state.lock:
        tx = state.transactions.get(ref.lower())
        if tx is None or tx.kind != "requesttopay" or (user and tx.api_user != user.api_user):
            return error(404, "RESOURCE_NOT_FOUND")
        state.refresh(tx)
        if tx.status != SUCCESSFUL:
            return error(409, "NOT_SUCCESSFULLY_COMPLETED")
        if now - (tx.final_at or tx.created_at) > NOTIFICATION_WINDOW_SECONDS:
            return error(410, "EXPIRED", "The delivery notification opportunity has expired.")
        if tx.notifications and now - tx.notifications[-1]["at"] < NOTIFICATION_INTERVAL_SECONDS:
            return error(
                429,
                "TOO_MANY_REQUESTS",
                "Too many attempts for the same ID have been made recently.",
            )
        tx.notifications.append({"message": message, "language": language, "at": now})
    return Reply(200)
