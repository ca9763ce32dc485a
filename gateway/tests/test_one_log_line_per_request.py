"""One log line per 4xx: the access line, not also django.request's and runserver's."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from rest_framework.test import APIClient

from payments.tests.helpers import PAYMENTS_URL


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def printed() -> Iterator[list[logging.LogRecord]]:
    """What reaches the root logger's handlers (the console, under settings.LOGGING)."""
    handler = Capture()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler.records
    finally:
        root.removeHandler(handler)


def request_lines(records: list[logging.LogRecord]) -> list[str]:
    # Only lines about the request itself; the MTN client and services log nothing here.
    return [f"{r.name}: {r.getMessage()}" for r in records if r.levelno >= logging.INFO]


@pytest.mark.django_db
def test_a_404_under_api_logs_exactly_one_line(printed):
    response = APIClient().get("/api/v1/no-such-thing")

    assert response.status_code == 404
    lines = request_lines(printed)
    assert len(lines) == 1, lines
    assert lines[0].startswith("gateway.access: GET /api/v1/no-such-thing 404")


@pytest.mark.django_db
def test_a_401_logs_exactly_one_line(printed):
    response = APIClient().get(PAYMENTS_URL)

    assert response.status_code == 401
    lines = request_lines(printed)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"gateway.access: GET {PAYMENTS_URL} 401")


def test_runservers_per_request_line_is_not_printed(printed):
    # What django.core.servers.basehttp logs for each request under `manage.py runserver`.
    logging.getLogger("django.server").warning(
        '"%s" %s %s',
        "GET /api/v1/no-such-thing HTTP/1.1",
        "404",
        "58",
        extra={"request": None, "server_time": "29/Nov/2026 11:50:00", "status_code": 404},
    )

    assert printed == []
    assert logging.getLogger("django.server").handlers == []  # Django's unmasked one is gone


def test_runservers_other_messages_still_print(printed):
    logging.getLogger("django.server").info("- Broken pipe from %s", ("127.0.0.1", 5555))

    assert [r.getMessage() for r in printed] == ["- Broken pipe from ('127.0.0.1', 5555)"]


def test_server_errors_still_log_their_traceback_through_django_request(printed):
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("django.request").error("Internal Server Error: /admin/", exc_info=True)

    assert len(printed) == 1
    assert printed[0].exc_info is not None
