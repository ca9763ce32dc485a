"""demo_ready: once every `make run` process answers, the key and the admin login, framed."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from shell.management.commands import demo_ready


class _Quiet(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(404)  # any answer counts
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def listening():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.fixture
def var_files(settings, tmp_path: Path) -> Path:
    settings.BASE_DIR = tmp_path
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "demo-api-key").write_text("mgw_demo_key_123\n")
    (tmp_path / "var" / "demo-admin-password").write_text("s3cret-pw\n")
    return tmp_path


def test_when_every_process_answers_the_key_and_login_are_framed(monkeypatch, listening, var_files):
    monkeypatch.setattr(demo_ready, "PROCESSES", (("gateway", listening), ("worker", listening)))
    out = StringIO()

    call_command("demo_ready", "--exit", "--timeout", "5", stdout=out)

    text = out.getvalue()
    lines = [line for line in text.splitlines() if line]
    assert lines[0].startswith("╔")
    assert lines[-1].startswith("╚")
    assert len({len(line) for line in lines}) == 1  # a closed box
    assert "momo-gateway is ready" in text
    assert "mgw_demo_key_123" in text
    assert "admin / s3cret-pw" in text
    assert "Not answering" not in text


def test_a_process_that_never_answers_is_named(monkeypatch, listening, var_files):
    dead = "http://127.0.0.1:9/"  # the discard port: nothing listens there
    monkeypatch.setattr(demo_ready, "PROCESSES", (("gateway", listening), ("worker", dead)))
    out = StringIO()

    call_command("demo_ready", "--exit", "--timeout", "1", stdout=out)

    assert "not all of it" in out.getvalue()
    assert "Not answering yet: worker" in out.getvalue()


def test_without_a_kept_password_it_says_how_to_reset_it(monkeypatch, listening, var_files):
    (var_files / "var" / "demo-admin-password").unlink()
    monkeypatch.setattr(demo_ready, "PROCESSES", (("gateway", listening),))
    out = StringIO()

    call_command("demo_ready", "--exit", stdout=out)

    assert "changepassword admin" in out.getvalue()


def test_make_run_starts_it_and_the_worker_answers_on_its_port(settings):
    procfile = (Path(settings.BASE_DIR) / "Procfile.dev").read_text()
    processes = dict(line.split(": ", 1) for line in procfile.splitlines() if line)

    assert processes["ready"].endswith("manage.py demo_ready")
    assert "WORKER_METRICS_PORT=8004" in processes["worker"]
    assert "WORKER_METRICS_ADDR=127.0.0.1" in processes["worker"]
    assert dict(demo_ready.PROCESSES)["worker"] == "http://127.0.0.1:8004/metrics"
