"""The current request's id, readable from anywhere (logs, audit events)."""

from __future__ import annotations

from contextvars import ContextVar

current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)


def get_request_id() -> str | None:
    return current_request_id.get()
