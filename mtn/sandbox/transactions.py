"""What every transaction POST and status GET shares, whatever the product (sections 4-5):
fault injection, the caller's UUID v4 reference, the callback host rule, the market's
currency, 409 for a reused reference, and the status body."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .scenarios import SUCCESSFUL, Outcome
from .state import ApiUser, SandboxState, SimTransaction, financial_id
from .wire import (
    Drop,
    Reply,
    apim,
    bad_request,
    error,
    is_uuid,
    is_uuid4,
    json_or_none,
    party_is_empty,
)

if TYPE_CHECKING:
    from .app import Sandbox


@dataclass(frozen=True)
class Decision:
    """What the product decided for a valid new transaction."""

    party: dict[str, Any]
    outcome: Outcome
    reference_id_to_refund: str | None = None


@dataclass(frozen=True)
class Kind:
    """One kind of transaction: its product, path segment and rules.

    ``validate`` checks the body alone (400 text or None); ``decide`` runs under the state
    lock once the reference is known to be new. ``party_in_body``: the body names its
    payer/payee (a refund's does not), and an empty one is MTN's 500.
    """

    name: str
    product: str
    party_key: str
    validate: Callable[[Any], str | None]
    decide: Callable[[SandboxState, dict[str, Any]], Decision]
    party_in_body: bool = True


def _outage(sim: Sandbox, rate: float) -> Reply | None:
    if not sim.state.chance(rate):
        return None
    if sim.state.chance(0.5):
        return error(500, "INTERNAL_PROCESSING_ERROR")
    return error(503, "SERVICE_UNAVAILABLE")


def _timeout(sim: Sandbox) -> Reply | None:
    faults = sim.state.faults
    if sim.state.take("timeout_next") or sim.state.chance(faults.timeout_rate):
        sim.sleep(faults.timeout_seconds)
        return apim(504, "Gateway Timeout")
    return None


def create(sim: Sandbox, kind: Kind, user: ApiUser | None, headers: Any, body: bytes) -> Reply:
    """POST a new transaction of ``kind``: 202 with an empty body, like MTN."""
    faults = sim.state.faults
    if sim.state.take("fail_next_posts"):
        return error(503, "SERVICE_UNAVAILABLE")
    failure = _outage(sim, faults.post_error_rate) or _timeout(sim)
    if failure:
        return failure

    ref = headers.get("X-Reference-Id") or ""
    if not is_uuid4(ref):
        return bad_request("X-Reference-Id must be a UUID version 4.")
    ref = ref.lower()
    callback_url = headers.get("X-Callback-Url")
    if callback_url is not None:
        callback_url = callback_url.strip()
        if not callback_url:
            return bad_request("X-Callback-Url must not be empty.")
        host = urlsplit(callback_url).hostname
        if not host:
            return bad_request("X-Callback-Url is not a URL.")
        expected = user.callback_host if user else None
        if host.lower() != (expected or "").lower():
            # The whole request fails and nothing is created (section 4.1).
            return error(500, "INVALID_CALLBACK_URL_HOST")

    data = json_or_none(body)
    problem = kind.validate(data)
    if problem:
        return bad_request(problem)
    assert isinstance(data, dict)  # noqa: S101 - narrowed by validate
    if kind.party_in_body and party_is_empty(data, kind.party_key):
        # Recorded at MTN: an empty payer is not a 400 but a 500 (body not recorded).
        return error(500, "INTERNAL_PROCESSING_ERROR")
    market_currency = sim.config.currency
    if market_currency and data["currency"] != market_currency:
        # The market takes only its own currency (section 1.3).
        return error(500, "INVALID_CURRENCY")

    now = time.time()
    with sim.state.lock:
        existing = sim.state.transactions.get(ref)
        if existing is not None:
            existing.conflict_count += 1
            return error(409, "RESOURCE_ALREADY_EXIST")
        decision = kind.decide(sim.state, data)
        outcome = decision.outcome
        tx = SimTransaction(
            reference_id=ref,
            product=kind.product,
            kind=kind.name,
            api_user=user.api_user if user else "",
            request=data,
            party_key=kind.party_key,
            party=dict(decision.party),
            status=outcome.status,
            reason=outcome.reason,
            created_at=now,
            callback_url=callback_url,
            reference_id_to_refund=decision.reference_id_to_refund,
            has_financial_id=outcome.has_financial_id,
        )
        if tx.is_final:
            tx.final_at = now
        if tx.status == SUCCESSFUL and outcome.has_financial_id:
            tx.financial_transaction_id = financial_id()
        if outcome.resolves_later:
            tx.resolve_at = now + max(sim.config.delay_seconds, 0.0)
        sim.state.transactions[ref] = tx

    if tx.is_final:
        sim.schedule(0.0, sim.callbacks.finalise, ref)
    elif outcome.resolves_later:
        sim.schedule(max(sim.config.delay_seconds, 0.0), sim.callbacks.finalise, ref)

    if sim.state.take("lose_next_posts") or sim.state.chance(faults.lost_response_rate):
        # The transaction exists, but the caller never learns it: the case that makes
        # retrying with the same reference (and treating 409 as success) necessary.
        if faults.lost_response_mode == "sleep":
            sim.sleep(faults.timeout_seconds)
        raise Drop
    return Reply(202)


def status(sim: Sandbox, kind: Kind, user: ApiUser | None, ref: str) -> Reply:
    """GET a transaction of ``kind``: 200 with its status body (also when FAILED)."""
    if not is_uuid(ref):
        return bad_request("Reference id must be a UUID.")
    failure = _outage(sim, sim.state.faults.status_error_rate) or _timeout(sim)
    if failure:
        return failure
    with sim.state.lock:
        tx = sim.state.transactions.get(ref.lower())
        # Another kind's, another product's or another API user's reference is "not found"
        # (section 4.2).
        if (
            tx is None
            or tx.kind != kind.name
            or tx.product != kind.product
            or (user and tx.api_user != user.api_user)
        ):
            return error(404, "RESOURCE_NOT_FOUND")
        sim.state.refresh(tx)
        tx.status_reads += 1
        return Reply(200, tx.status_json(reason_as_object=sim.config.reason_as_object))
