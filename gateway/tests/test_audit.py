"""The audit trail is append-only: through the model, the queryset, and (PostgreSQL) raw SQL."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from gateway.audit import Actor, audit_record
from gateway.models import AuditEvent
from gateway.request_context import current_request_id

pytestmark = pytest.mark.django_db


@pytest.fixture
def event(tenant) -> AuditEvent:
    return audit_record(
        tenant=tenant,
        object_type="payment",
        object_id="p-1",
        action="payment.created",
        actor=Actor.api_key("mgw_abcdefgh"),
        data={"amount": "1000"},
    )


def snapshot() -> list[tuple]:
    return list(AuditEvent.objects.order_by("pk").values_list("pk", "action", "data"))


def test_audit_record_stores_who_did_what(event):
    stored = AuditEvent.objects.get(pk=event.pk)

    assert stored.object_type == "payment"
    assert stored.object_id == "p-1"
    assert stored.action == "payment.created"
    assert stored.actor == "api_key:mgw_abcdefgh"
    assert stored.data == {"amount": "1000"}
    assert stored.created_at is not None


def test_audit_record_carries_the_current_request_id(tenant):
    token = current_request_id.set("req-77")
    try:
        event = audit_record(
            tenant=tenant, object_type="x", object_id=1, action="x.y", actor=Actor.system()
        )
    finally:
        current_request_id.reset(token)

    assert event.request_id == "req-77"
    assert event.actor == "system"


def test_saving_an_existing_event_is_refused(event):
    before = snapshot()
    event.action = "payment.rewritten"

    with pytest.raises(TypeError, match="append-only"):
        event.save()

    assert snapshot() == before


def test_deleting_an_event_is_refused(event):
    before = snapshot()

    with pytest.raises(TypeError, match="append-only"):
        event.delete()

    assert snapshot() == before


def test_queryset_update_is_refused(event):
    before = snapshot()

    with pytest.raises(TypeError, match="append-only"):
        AuditEvent.objects.filter(pk=event.pk).update(action="payment.rewritten")
    with pytest.raises(TypeError, match="append-only"):
        AuditEvent.objects.all().update(data={})

    assert snapshot() == before


def test_queryset_delete_is_refused(event):
    before = snapshot()

    with pytest.raises(TypeError, match="append-only"):
        AuditEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(TypeError, match="append-only"):
        AuditEvent.objects.all().delete()

    assert snapshot() == before


def test_bulk_update_is_refused(event):
    before = snapshot()
    event.action = "payment.rewritten"

    # bulk_update runs inside its own atomic block, which the refusal rolls back.
    with pytest.raises(TypeError, match="append-only"), transaction.atomic():
        AuditEvent.objects.bulk_update([event], ["action"])

    assert snapshot() == before


postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the append-only trigger exists on PostgreSQL only"
)


@postgres_only
@pytest.mark.postgres
def test_raw_sql_update_is_refused_by_the_database(event):
    before = snapshot()

    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "UPDATE gateway_auditevent SET action = %s WHERE id = %s",
            ["payment.rewritten", event.pk],
        )

    assert snapshot() == before


@postgres_only
@pytest.mark.postgres
def test_raw_sql_delete_is_refused_by_the_database(event):
    before = snapshot()

    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM gateway_auditevent WHERE id = %s", [event.pk])

    assert snapshot() == before
