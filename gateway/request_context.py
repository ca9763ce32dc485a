"""The current request's id, readable from anywhere (logs, audit events)."""

from __future__ import annotations

from contextvars import ContextVar

current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)


def get_request_id() -> str | None:
    return current_request_id.get()


# What the logs say a line is about, besides the request id: the tenant (its slug) and the
# payment or payout. Set by the access-log middleware, authentication and the services.
current_tenant: ContextVar[str | None] = ContextVar("current_tenant", default=None)
current_payment_id: ContextVar[str | None] = ContextVar("current_payment_id", default=None)


def get_tenant() -> str | None:
    return current_tenant.get()


def get_payment_id() -> str | None:
    return current_payment_id.get()


def bind_tenant(slug: str | None) -> None:
    """Say which tenant the rest of this request (or piece of work) is for, in its logs."""
    current_tenant.set(slug or None)


def bind_payment_id(payment_id: object) -> None:
    """Say which payment or payout the rest of this request (or piece of work) is about."""
    current_payment_id.set(str(payment_id) if payment_id else None)
