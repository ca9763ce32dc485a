"""The simulator's own control API under ``/_simulator/`` (no authentication; loopback)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from .wire import Reply, json_or_none

if TYPE_CHECKING:
    from .app import Sandbox


def route(sim: Sandbox, method: str, path: str, body: bytes, query: str = "") -> Reply:
    parts = [p for p in path.split("/") if p][1:]
    state = sim.state
    if parts == ["faults"]:
        if method == "GET":
            return Reply(200, state.faults.as_dict())
        if method == "POST":
            data = json_or_none(body) if body.strip() else {}
            if not isinstance(data, dict):
                return Reply(400, {"error": "body must be a JSON object"})
            try:
                return Reply(200, state.set_faults(**data))
            except (TypeError, ValueError) as exc:
                return Reply(400, {"error": str(exc)})
    if parts == ["reset"] and method == "POST":
        sim.reset()
        return Reply(200, {"status": "reset"})
    if parts == ["expire-tokens"] and method == "POST":
        return Reply(200, {"expired": state.expire_tokens()})
    if parts == ["transactions"] and method == "GET":
        return Reply(200, {"results": state.all_transactions()})
    if len(parts) == 2 and parts[0] == "transactions" and method == "GET":
        tx = state.transaction(parts[1])
        return Reply(200, tx) if tx else Reply(404, {"error": "not found"})
    if len(parts) == 2 and parts[0] == "transactions" and method == "POST":
        return _change_mind(sim, parts[1], body)
    if (
        len(parts) == 3
        and parts[:1] == ["transactions"]
        and parts[2] == "refunds"
        and method == "GET"
    ):
        return Reply(200, {"results": state.refunds_of(parts[1])})
    if parts == ["callbacks"] and method == "GET":
        return Reply(200, {"results": state.callback_log()})
    if parts == ["requests"] and method == "GET":
        return _requests(sim, query)
    if parts == ["latency"]:
        if method == "GET":
            return Reply(200, {"seconds": sim.latency_seconds})
        if method == "POST":
            data = json_or_none(body)
            if not isinstance(data, dict) or set(data) != {"seconds"}:
                return Reply(400, {"error": 'body must be {"seconds": <number>}'})
            try:
                return Reply(200, {"seconds": sim.set_latency(data["seconds"])})
            except ValueError as exc:
                return Reply(400, {"error": str(exc)})
    if parts == ["load"] and method == "GET":
        return Reply(200, sim.load())
    if parts == ["load", "reset-peak"] and method == "POST":
        return Reply(200, sim.load(reset_peak=True))
    if parts == ["market"] and method == "GET":
        return Reply(
            200,
            {
                "target_environment": sim.config.target_environment,
                "currency": sim.config.currency,
                "provisioning": sim.config.provisioning_enabled,
                "provider_callback_host": sim.config.provider_callback_host,
            },
        )
    return Reply(404, {"error": "unknown simulator control path"})


def _requests(sim: Sandbox, query: str) -> Reply:
    """The request log, optionally only entries after sequence number ``after`` (to read it
    piece by piece while it grows), of one ``method``, or under a ``path`` prefix."""
    params = {key: values[-1] for key, values in parse_qs(query).items()}
    try:
        after = int(params.get("after", "0"))
    except ValueError:
        return Reply(400, {"error": "after must be an integer"})
    method = params.get("method")
    prefix = params.get("path", "")
    with sim.state.lock:
        entries: list[dict[str, Any]] = [
            dict(entry)
            for entry in sim.state.requests
            if entry.get("seq", 0) > after
            and (method is None or entry["method"] == method)
            and entry["path"].startswith(prefix)
        ]
    return Reply(200, {"results": entries})


def _change_mind(sim: Sandbox, reference_id: str, body: bytes) -> Reply:
    """MTN changes its mind about a transaction, e.g. after the gateway holds it final:
    ``{"status": "SUCCESSFUL"|"FAILED", "amount"?: "1500" | null, "reason"?: "CODE"}``.
    ``amount`` null makes the status answer carry no amount at all. No callback is sent: the
    gateway hears of it by polling, a re-check or ``reconcile``."""
    data = json_or_none(body)
    if not isinstance(data, dict) or data.get("status") not in ("SUCCESSFUL", "FAILED"):
        return Reply(400, {"error": 'body must be {"status": "SUCCESSFUL" | "FAILED", ...}'})
    unknown = set(data) - {"status", "amount", "reason"}
    if unknown:
        return Reply(400, {"error": f"unknown fields: {sorted(unknown)}"})
    with sim.state.lock:
        tx = sim.state.transactions.get(reference_id.lower())
        if tx is None:
            return Reply(404, {"error": "not found"})
        tx.status = data["status"]
        tx.resolve_at = None
        if tx.status == "SUCCESSFUL":
            tx.reason = None
            tx.financial_transaction_id = tx.financial_transaction_id or str(
                sim.state.rng.randrange(10**8, 10**9)
            )
        else:
            tx.reason = str(data.get("reason") or "INTERNAL_PROCESSING_ERROR")
            tx.financial_transaction_id = None  # MTN's FAILED answer carries none
        if "amount" in data:
            amount = data["amount"]
            tx.request["amount"] = None if amount is None else str(amount)
        return Reply(200, tx.inspect())
