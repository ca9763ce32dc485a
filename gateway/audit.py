"""Writing the audit trail: one function, used by every service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.models import AuditEvent
from gateway.request_context import get_request_id


@dataclass(frozen=True)
class Actor:
    """Who did something: an API key (by prefix), a staff user, MTN, or the system."""

    type: str
    id: str = ""

    @classmethod
    def system(cls) -> Actor:
        return cls(AuditEvent.ActorType.SYSTEM)

    @classmethod
    def mtn(cls) -> Actor:
        return cls(AuditEvent.ActorType.MTN)

    @classmethod
    def staff(cls, username: str) -> Actor:
        return cls(AuditEvent.ActorType.STAFF, username)

    @classmethod
    def api_key(cls, prefix: str) -> Actor:
        return cls(AuditEvent.ActorType.API_KEY, prefix)


def audit_record(
    *,
    tenant: Any,
    object_type: str,
    object_id: Any,
    action: str,
    actor: Actor,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the trail. Call it inside the transaction of the change it records."""
    event = audit_event(
        tenant=tenant,
        object_type=object_type,
        object_id=object_id,
        action=action,
        actor=actor,
        data=data,
    )
    event.save(force_insert=True)
    return event


def audit_event(
    *,
    tenant: Any,
    object_type: str,
    object_id: Any,
    action: str,
    actor: Actor,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """An event not saved yet, for a caller that inserts it together with its change."""
    return AuditEvent(
        tenant=tenant,
        object_type=object_type,
        object_id=str(object_id),
        action=action,
        actor_type=actor.type,
        actor_id=actor.id,
        data=data or {},
        request_id=get_request_id() or "",
    )
