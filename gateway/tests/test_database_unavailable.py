"""A database that cannot be reached: 503 service_unavailable with Retry-After everywhere,
never a 500 or a stack trace; the worker waits and carries on.

The failures here are injected in-process; gateway/tests/production/test_outages.py cuts a
real PostgreSQL under gunicorn.
"""

from __future__ import annotations

import json
import logging
import threading

import pytest
from django.db import InterfaceError, OperationalError
from django.test import Client, RequestFactory

from gateway.errors import api_exception_handler
from gateway.metrics import REGISTRY
from gateway.middleware import server_error
from payments.models import Payment
from payments.tests.helpers import PAYMENTS_URL, payment_body, post_json
from shell import worker as worker_module
from shell.worker import Worker
from webhooks.tests.conftest import post_signed, post_token

DOWN = OperationalError("server closed the connection unexpectedly")


def unavailable_count(where: str) -> float:
    return REGISTRY.get_sample_value("momo_database_unavailable_total", {"where": where}) or 0


def assert_unavailable(response) -> None:
    assert response.status_code == 503, response.content
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == "service_unavailable"
    assert int(response["Retry-After"]) >= 1


@pytest.mark.parametrize("exc", [DOWN, InterfaceError("connection already closed")])
def test_the_api_handler_answers_503_with_retry_after(exc):
    request = RequestFactory().get(PAYMENTS_URL)

    response = api_exception_handler(exc, {"request": request})

    assert response.status_code == 503
    assert response.data["error"]["code"] == "service_unavailable"
    assert response["Retry-After"] == "5"


@pytest.mark.django_db
def test_an_api_request_is_503_when_the_database_fails(alice, monkeypatch, caplog):
    def down(**kwargs):
        raise DOWN

    monkeypatch.setattr("tenants.authentication._active_keys", down)
    before = unavailable_count("api")

    with caplog.at_level(logging.WARNING):
        response = alice.client.get(PAYMENTS_URL)

    assert_unavailable(response)
    assert unavailable_count("api") - before == 1
    assert not [r for r in caplog.records if r.exc_info]  # an outage is not a bug


@pytest.mark.django_db
def test_a_create_that_got_503_and_is_retried_makes_one_payment(alice, mtn, monkeypatch):
    from payments import services

    real = services.transfer_create_and_submit

    def fails_once(**kwargs):
        monkeypatch.setattr(services, "transfer_create_and_submit", real)
        raise DOWN

    monkeypatch.setattr(services, "transfer_create_and_submit", fails_once)

    first = post_json(alice.client, PAYMENTS_URL, payment_body(), key="order-1")
    second = post_json(alice.client, PAYMENTS_URL, payment_body(), key="order-1")
    third = post_json(alice.client, PAYMENTS_URL, payment_body(), key="order-1")

    assert_unavailable(first)
    assert second.status_code == 201
    assert third.status_code == 201
    assert third["Idempotent-Replayed"] == "true"
    assert third.json()["id"] == second.json()["id"]
    assert Payment.objects.count() == 1


@pytest.mark.django_db
def test_both_callback_doors_answer_503_so_that_mtn_retries(monkeypatch):
    def down(*args, **kwargs):
        raise DOWN

    monkeypatch.setattr("webhooks.views.callback_receive", down)
    monkeypatch.setattr("webhooks.views.transfer_by_token", down)
    before = unavailable_count("callback")

    signed = post_signed(Client(), {"externalId": "x", "status": "SUCCESSFUL"})
    token = post_token(Client(), "t" * 43, {"externalId": "x", "status": "SUCCESSFUL"})

    assert_unavailable(signed)
    assert_unavailable(token)
    assert unavailable_count("callback") - before == 2


@pytest.mark.django_db
def test_the_admin_shows_a_plain_503_page(admin_client, monkeypatch):
    def down(self, *args, **kwargs):
        raise DOWN

    monkeypatch.setattr("django.contrib.sessions.backends.db.SessionStore.load", down)

    response = admin_client.get("/admin/")

    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    assert b"Service unavailable" in response.content
    assert b"Traceback" not in response.content
    assert int(response["Retry-After"]) >= 1


def test_an_outage_met_outside_any_view_is_503_not_500():
    request = RequestFactory().get("/admin/")
    try:
        raise DOWN
    except OperationalError:
        response = server_error(request)

    assert response.status_code == 503
    assert int(response["Retry-After"]) >= 1


def test_another_error_outside_any_view_stays_a_500():
    request = RequestFactory().get("/api/v1/payments")
    try:
        raise RuntimeError("a bug")
    except RuntimeError:
        response = server_error(request)

    assert response.status_code == 500
    assert json.loads(response.content)["error"]["code"] == "internal_error"


@pytest.mark.django_db
def test_the_worker_waits_out_an_outage_and_carries_on(monkeypatch, caplog):
    monkeypatch.setattr(worker_module, "OUTAGE_FIRST_WAIT", 0.001)
    monkeypatch.setattr(worker_module, "OUTAGE_MAX_WAIT", 0.004)
    waits: list[float] = []
    rounds: list[str] = []

    class Flaky(Worker):
        def step(self) -> dict[str, int]:
            if len(rounds) < 5:
                rounds.append("down")
                raise DOWN
            rounds.append("up")
            self.stop_event.set()
            return {"payment.submitted": 1}

        def deliver_and_purge(self) -> dict[str, int]:
            return {}  # the dispatcher's outage handling is what this test watches

        def _reconcile_forever(self) -> None:
            return  # likewise: its thread waits minutes on the stop event this test counts

    worker = Flaky(stop_event=threading.Event())
    real_wait = worker.stop_event.wait
    monkeypatch.setattr(worker.stop_event, "wait", lambda t=None: waits.append(t) or real_wait(0))

    with caplog.at_level(logging.INFO, logger="shell.worker"):
        worker.run_forever(idle_sleep=0)

    assert rounds == ["down"] * 5 + ["up"]
    assert waits == [0.001, 0.002, 0.004, 0.004, 0.004]  # doubling, capped
    messages = [r.getMessage() for r in caplog.records]
    assert sum("cannot be reached" in m for m in messages) == 4  # the start, then at the cap
    assert any("answers again" in m for m in messages)
    assert not [r for r in caplog.records if r.exc_info]
