"""Injected misbehaviour: the faults a gateway must survive, switchable at runtime."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass
class Faults:
    """Injected misbehaviour. Rates are probabilities 0..1; ``*_next`` are exact counters."""

    down: bool = False  # every MTN call answers 503
    post_error_rate: float = 0.0  # transaction POSTs: 500 INTERNAL_PROCESSING_ERROR or 503
    status_error_rate: float = 0.0  # status GETs: 500 INTERNAL_PROCESSING_ERROR or 503
    rate_limit_rate: float = 0.0  # any MTN call: 429 with Retry-After
    retry_after_seconds: int = 1
    timeout_rate: float = 0.0  # POST/GET: sleep timeout_seconds, create nothing, then 504
    timeout_seconds: float = 15.0
    lost_response_rate: float = 0.0  # POST: create the transaction, then never answer
    lost_response_mode: str = "drop"  # "drop" the connection, or "sleep" timeout_seconds first
    lost_callback_rate: float = 0.0
    duplicate_callback_rate: float = 0.0
    out_of_order_rate: float = 0.0  # after the final callback, a stale PENDING one arrives
    callback_delay_seconds: float = 0.0
    fail_next_posts: int = 0  # the next N transaction POSTs answer 503
    lose_next_posts: int = 0  # the next N POSTs are created but their answer is lost
    rate_limit_next: int = 0  # the next N MTN calls answer 429
    timeout_next: int = 0  # the next N POST/status calls time out (nothing created)
    token_lifetime_seconds: float | None = None  # tokens die this early (still say 3600)

    def update(self, values: dict[str, Any]) -> None:
        names = {f.name: f for f in dataclasses.fields(self)}
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ValueError(f"unknown fault(s): {', '.join(unknown)}")
        for key, value in values.items():
            current = getattr(self, key)
            if key == "lost_response_mode":
                if value not in ("drop", "sleep"):
                    raise ValueError("lost_response_mode must be 'drop' or 'sleep'")
            elif key == "token_lifetime_seconds":
                value = None if value is None else float(value)
            elif isinstance(current, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"{key} must be true or false")
            elif isinstance(current, int):
                value = int(value)
                if value < 0:
                    raise ValueError(f"{key} must not be negative")
            elif isinstance(current, float):
                value = float(value)
                if key.endswith("_rate") and not 0.0 <= value <= 1.0:
                    raise ValueError(f"{key} must be between 0 and 1")
                if value < 0:
                    raise ValueError(f"{key} must not be negative")
            setattr(self, key, value)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
