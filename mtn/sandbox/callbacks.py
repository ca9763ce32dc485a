"""Callbacks (reference section 8): the final status body, without the reference, sent to
the request's ``X-Callback-Url`` once the transaction is final, with the faults a gateway
must survive (lost, duplicated, late, out of order).

Unlike real MTN, callbacks are signed (``X-Signature-256``) so that the gateway's signed
door can be exercised end to end.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import TYPE_CHECKING, Any

import requests

from .scenarios import PENDING

if TYPE_CHECKING:
    from .app import Sandbox


class Callbacks:
    def __init__(self, sim: Sandbox) -> None:
        self.sim = sim

    def finalise(self, ref: str) -> None:
        """Make a due transaction final and send its callbacks, once."""
        sim = self.sim
        if sim.stopping.is_set():
            return
        state = sim.state
        with state.lock:
            tx = state.transactions.get(ref)
            if tx is None:
                return
            if tx.status == PENDING and tx.resolve_at is not None:
                tx.resolve_at = min(tx.resolve_at, time.time())
            state.refresh(tx)
            if not tx.is_final or tx.callbacks_dispatched:
                return
            tx.callbacks_dispatched = True
            targets = [u for u in (tx.callback_url, sim.config.signed_callback_url) if u]
            final = tx.status_json(reason_as_object=sim.config.reason_as_object)
            stale = tx.status_json(reason_as_object=sim.config.reason_as_object, status=PENDING)
            stale.pop("financialTransactionId", None)
        faults = state.faults
        for url in targets:
            if state.chance(faults.lost_callback_rate):
                self._log(ref, url, None, final, outcome="lost")
                continue
            sends = [final]
            if state.chance(faults.duplicate_callback_rate):
                sends.append(final)
            if state.chance(faults.out_of_order_rate):
                sends.append(stale)
            sim.schedule(faults.callback_delay_seconds, self._deliver, ref, url, sends)

    def _deliver(self, ref: str, url: str, bodies: list[dict[str, Any]]) -> None:
        for body in bodies:
            if self.sim.stopping.is_set():
                return
            self.send(ref, url, body)

    def send(self, ref: str, url: str, body: dict[str, Any]) -> None:
        config = self.sim.config
        raw = json.dumps(body, separators=(",", ":")).encode()
        signature = hmac.new(config.webhook_secret.encode(), raw, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "X-Signature-256": f"sha256={signature}"}
        method = config.callback_method.upper()
        try:
            response = requests.request(
                method, url, data=raw, headers=headers, timeout=config.callback_timeout
            )
        except requests.RequestException as exc:
            self._log(ref, url, method, body, outcome="error", error=str(exc))
            return
        self._log(ref, url, method, body, outcome="sent", status=response.status_code)

    def _log(
        self,
        ref: str,
        url: str,
        method: str | None,
        body: dict[str, Any],
        *,
        outcome: str,
        status: int | None = None,
        error: str | None = None,
    ) -> None:
        state = self.sim.state
        with state.lock:
            state.callbacks.append(
                {
                    "reference_id": ref,
                    "url": url,
                    "method": method,
                    "body": body,
                    "outcome": outcome,
                    "status_code": status,
                    "error": error,
                    "at": time.time(),
                }
            )
