"""The processes a chaos test runs, as an operator would run them, on loopback only.

A fresh PostgreSQL database (created here, migrated with ``manage.py migrate``, dropped at
the end), the MTN simulator (``manage.py mtn_sandbox``) injecting faults (with
``two_markets``, a second one as MTN Uganda for UGX, registered with ``mtn_account_set`` as
the platform's account ``uganda``), gunicorn with gunicorn.conf.py (2 workers), two
``manage.py run_worker`` processes, and a merchant webhook receiver in this process.
Every process is started, killed and stopped by its own pid.

With ``proxied``, gunicorn and the workers reach PostgreSQL (and Redis, when ``REDIS_URL``
names one) through a ``TcpProxy`` (tests/proxy.py), so that a test can cut either in the
middle of the load while the machine's own services stay up; the test's own reads go
straight to PostgreSQL. Only the runs that cut something are proxied: the proxy's threads
share this process with the merchants' and would slow every query of the others.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dj_database_url
import psycopg
import requests

from gateway.tests.production.helpers import production_secrets
from tests.latency_proxy import LatencyProxy
from tests.proxy import TcpProxy

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
GUNICORN = str(Path(sys.executable).parent / "gunicorn")

# What a developer's shell (or CI) may hold that would change what runs here.
_CLEARED = (
    "DATABASE_URL",
    "REDIS_URL",
    "DEBUG",
    *production_secrets(),
    "ALLOWED_HOSTS",
    "LOG_FORMAT",
    "METRICS_TOKEN",
    "PROMETHEUS_MULTIPROC_DIR",
    "WORKER_METRICS_PORT",
    "WEB_CONCURRENCY",
    "GUNICORN_BIND",
    "GUNICORN_THREADS",
    "PORT",
    "MTN_CALLBACK_URL",
    "MTN_BASE_URL",
)


def postgres_url() -> str | None:
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith(("postgres://", "postgresql://")) else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def child_pids(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


# --- the database ---------------------------------------------------------------------------


class ChaosDatabase:
    """A scratch database next to the one in DATABASE_URL; never pytest-django's."""

    def __init__(self, base_url: str) -> None:
        params = dj_database_url.parse(base_url)
        self.name = f"momo_gateway_chaos_{os.getpid()}_{secrets.token_hex(3)}"
        self._connect = {
            "host": params["HOST"] or None,
            "port": params["PORT"] or None,
            "user": params["USER"] or None,
            "password": params["PASSWORD"] or None,
        }
        self._admin_db = params["NAME"] or "postgres"
        self.url = base_url.rsplit("/", 1)[0] + "/" + self.name
        self.host = params["HOST"] or "127.0.0.1"
        self.port = int(params["PORT"] or 5432)
        self._conn: psycopg.Connection | None = None
        self._lock = threading.Lock()  # one connection, used from the test and its monitor

    def url_through(self, proxy: TcpProxy) -> str:
        """This database's URL with the host and port of ``proxy`` instead."""
        params = dj_database_url.parse(self.url)
        credentials = params["USER"] or ""
        if params["PASSWORD"]:
            credentials += f":{params['PASSWORD']}"
        at = f"{credentials}@" if credentials else ""
        return f"postgres://{at}127.0.0.1:{proxy.port}/{self.name}"

    def create(self) -> None:
        with psycopg.connect(**self._connect, dbname=self._admin_db, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        with psycopg.connect(**self._connect, dbname=self._admin_db, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def rows(self, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(
                **self._connect,
                dbname=self.name,
                autocommit=True,
                row_factory=psycopg.rows.dict_row,
            )
        return list(self._conn.execute(sql, params).fetchall())

    def value(self, sql: str, params: tuple = ()) -> Any:
        row = self.rows(sql, params)[0]
        return next(iter(row.values()))


# --- the merchant ---------------------------------------------------------------------------


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A run_worker killed mid-delivery resets its connection: expected here, not news.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@dataclass
class Received:
    event_id: str
    attempt: int
    status: int
    headers: dict[str, str]
    body: bytes
    at: float = 0.0  # time.time() when it arrived


class MerchantReceiver:
    """The tenant's webhook URL: answers 500 to the first attempt of some events, else 200.

    Which events fail first is decided by a hash of the event id, so about
    ``fail_first_percent`` of them do; their retry 5 seconds later succeeds.
    """

    def __init__(self, fail_first_percent: int) -> None:
        self.fail_first_percent = fail_first_percent
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.attempts: Counter[str] = Counter()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status = receiver._record(dict(self.headers.items()), body)
                payload = b'{"ok":true}' if status == 200 else b'{"error":"try again"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/momo"

    def fails_first(self, event_id: str) -> bool:
        bucket = int(hashlib.sha256(event_id.encode()).hexdigest()[:8], 16) % 100
        return bucket < self.fail_first_percent

    def _record(self, headers: dict[str, str], body: bytes) -> int:
        lowered = {k.lower(): v for k, v in headers.items()}
        event_id = lowered.get("webhook-id", "")
        with self.lock:
            self.attempts[event_id] += 1
            attempt = self.attempts[event_id]
            status = 500 if attempt == 1 and self.fails_first(event_id) else 200
            self.received.append(Received(event_id, attempt, status, lowered, body, time.time()))
        return status

    def event_ids(self) -> set[str]:
        with self.lock:
            return {r.event_id for r in self.received}

    def acknowledged_ids(self) -> set[str]:
        with self.lock:
            return {r.event_id for r in self.received if r.status == 200}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- processes ------------------------------------------------------------------------------


@dataclass
class Process:
    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen | None = None
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        with self.log.open("a") as out:
            out.write(f"\n===== start #{self.starts} at {time.time():.3f}: {self.args}\n")
            out.flush()
            self.popen = subprocess.Popen(  # noqa: S603 - our own commands
                self.args, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        assert self.popen is not None  # noqa: S101
        return self.popen.pid

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self, *, children: bool = True) -> tuple[list[int], list[int]]:
        """SIGKILL this process and (unless told not to) the processes it forked, by pid.

        Returns (killed pids, forked pids). gunicorn's workers left orphaned by a master
        killed alone notice their parent is gone and exit by themselves.
        """
        if not self.running():
            return [], []
        forked = child_pids(self.pid)
        os.kill(self.pid, signal.SIGKILL)
        killed = [self.pid]
        if children:
            for pid in forked:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
        self.popen.wait(timeout=10)
        return killed, forked

    def stop(self, timeout: float = 15.0) -> None:
        if not self.running():
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def wait_http(url: str, process: Process, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not process.running():
            raise RuntimeError(f"{process.name} exited:\n{process.tail()}")
        try:
            if requests.get(url, timeout=1.0).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {seconds}s:\n{process.tail()}")


# --- the whole stack ------------------------------------------------------------------------


@dataclass
class ChaosStack:
    workdir: Path
    seed: int
    faults: dict[str, Any]
    fail_first_percent: int = 20
    web_port: int = field(default_factory=free_port)
    sim_port: int = field(default_factory=free_port)
    db: ChaosDatabase | None = None
    receiver: MerchantReceiver | None = None
    simulator: Process | None = None
    web: Process | None = None
    workers: list[Process] = field(default_factory=list)
    api_key: str = ""
    webhook_secret: str = ""
    tenant: str = "chaos"
    # A fee with a remainder (1.5 % of most amounts rounds), so the money check proves the
    # half-up rounding on every settled payment, not only a multiplication.
    collection_fee_percent: Decimal = Decimal("1.5")
    # What the tenant was given by ``balance_adjust`` before the load, per currency.
    funding: dict[str, Decimal] = field(default_factory=lambda: {"EUR": Decimal(10_000_000)})
    web_killed_at: list[float] = field(default_factory=list)
    # (start, end) in time.time() of each PostgreSQL cut.
    database_cuts: list[tuple[float, float]] = field(default_factory=list)
    # Real-looking secrets (DEBUG is off), the same for every process: the simulator accepts
    # exactly the MTN credentials the gateway is given.
    env_secrets: dict[str, str] = field(default_factory=production_secrets)
    proxied: bool = False
    # With ``two_markets``, a second simulator is MTN Uganda (UGX only, its own credentials),
    # registered as the platform's MTN account ``uganda``; the default account stays EUR.
    two_markets: bool = False
    ug_sim_port: int = field(default_factory=free_port)
    ug_simulator: Process | None = None
    db_proxy: TcpProxy | None = None
    redis_proxy: TcpProxy | None = None
    redis_db: str = "0"
    # MTN answers this late (each simulator behind a LatencyProxy), as a real MTN does: the
    # dispatcher must stay exact with many calls in flight, not only with instant answers.
    mtn_latency: float = 0.3
    mtn_proxies: dict[str, LatencyProxy] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def sim_url(self) -> str:
        return f"http://127.0.0.1:{self.sim_port}"

    @property
    def ug_sim_url(self) -> str:
        return f"http://127.0.0.1:{self.ug_sim_port}"

    def gateway_mtn_url(self, account: str) -> str:
        """Where the gateway reaches the simulator of ``account``: through its latency proxy."""
        direct = self.sim_urls()[account]
        if not self.mtn_latency:
            return direct
        if account not in self.mtn_proxies:
            self.mtn_proxies[account] = LatencyProxy(direct, self.mtn_latency)
        return self.mtn_proxies[account].url

    def sim_urls(self) -> dict[str, str]:
        """Each MTN account's simulator, by the account's name (``mtn_account`` on a row)."""
        urls = {"default": self.sim_url}
        if self.two_markets:
            urls["uganda"] = self.ug_sim_url
        return urls

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
        database_url = self.db.url_through(self.db_proxy) if self.db_proxy else self.db.url
        env.update(
            {
                "DATABASE_URL": database_url,
                "DEBUG": "false",
                **self.env_secrets,
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "SECURE_SSL_REDIRECT": "false",
                "LOG_FORMAT": "plain",
                "LOG_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1",
                "MTN_BASE_URL": self.gateway_mtn_url("default"),
                "MTN_CALLBACK_URL": self.base_url,
                "MTN_STATUS_POLL_AFTER_SECONDS": "1",
                "MTN_CONNECT_TIMEOUT": "1",
                "MTN_READ_TIMEOUT": "1",
                "MTN_SUBMIT_MAX_TRIES": "3",
                "MTN_SUBMIT_MAX_SECONDS": "3",
                # Longer than the longest create (3 s of retries, each try at most 2 s), so a
                # live request's key is never taken over; short, so a dead one's is soon.
                "IDEMPOTENCY_LOCK_TIMEOUT_SECONDS": "15",
                "RATE_LIMIT_DEFAULT": "100000/m",
                "CALLBACK_RATE_LIMIT": "100000/m",
                "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
            }
        )
        if self.redis_proxy is not None:
            env["REDIS_URL"] = f"redis://127.0.0.1:{self.redis_proxy.port}/{self.redis_db}"
        elif os.environ.get("REDIS_URL"):
            env["REDIS_URL"] = os.environ["REDIS_URL"]
        return env

    def manage(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(  # noqa: S603 - our own command
            [PYTHON, "manage.py", *args],
            input=stdin,
            cwd=ROOT,
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stderr}")
        return done.stdout

    def start(self, base_database_url: str) -> None:
        self.db = ChaosDatabase(base_database_url)
        self.db.create()
        redis_url = os.environ.get("REDIS_URL", "")
        if self.proxied:
            self.db_proxy = TcpProxy(self.db.host, self.db.port)
        if self.proxied and redis_url.startswith("redis://"):
            redis = urllib.parse.urlparse(redis_url)
            self.redis_proxy = TcpProxy(redis.hostname or "127.0.0.1", redis.port or 6379)
            self.redis_db = redis.path.lstrip("/") or "0"
        self.manage("migrate", "--no-input", "-v", "0")
        self.receiver = MerchantReceiver(self.fail_first_percent)
        created = json.loads(
            self.manage(
                "create_tenant",
                self.tenant,
                "--name",
                "Chaos",
                "--webhook-url",
                self.receiver.url,
                "--collection-fee-percent",
                str(self.collection_fee_percent),
            )
        )
        self.api_key, self.webhook_secret = created["api_key"], created["webhook_secret"]
        if self.two_markets:
            self.funding.setdefault("UGX", Decimal(1_000_000_000))
        # Payouts reserve their amount from the tenant's balance (the ledger): fund it well
        # past what 300 orders of at most 5000 EUR can take, so none is refused for funds.
        for currency, amount in self.funding.items():
            self.manage(
                "balance_adjust", self.tenant, currency, str(amount), "--reason", "chaos funds"
            )
        env = self.environment()
        self.simulator = Process(
            "simulator",
            [
                PYTHON,
                "manage.py",
                "mtn_sandbox",
                "--port",
                str(self.sim_port),
                "--delay-seconds",
                "1",
                "--seed",
                str(self.seed),
                "--faults",
                json.dumps(self.faults),
            ],
            env,
            self.workdir / "simulator.log",
        )
        self.simulator.start()
        if self.two_markets:
            self._start_uganda(env)
        self.web = Process(
            "web",
            [GUNICORN, "--config", "gunicorn.conf.py"],
            {
                **env,
                "GUNICORN_BIND": f"127.0.0.1:{self.web_port}",
                "WEB_CONCURRENCY": "2",
                "GUNICORN_THREADS": "4",
            },
            self.workdir / "web.log",
        )
        self.start_web()
        for index in range(2):
            worker = Process(
                f"worker-{index}",
                [PYTHON, "manage.py", "run_worker", "--idle-sleep", "0.2"],
                env,
                self.workdir / f"worker-{index}.log",
            )
            worker.start()
            self.workers.append(worker)
        wait_http(f"{self.sim_url}/_simulator/faults", self.simulator)
        if self.ug_simulator is not None:
            wait_http(f"{self.ug_sim_url}/_simulator/faults", self.ug_simulator)

    def _start_uganda(self, env: dict[str, str]) -> None:
        """MTN Uganda: its own simulator and credentials, stored as the platform account
        ``uganda`` for UGX with ``mtn_account_set`` (credentials on stdin), as an operator
        would register a second market."""
        credentials = {
            product: {
                "subscription_key": f"ug-{product}-{secrets.token_hex(8)}",
                "api_user": str(uuid.uuid4()),
                "api_key": secrets.token_hex(16),
            }
            for product in ("collection", "disbursement")
        }
        credentials_file = self.workdir / "uganda-credentials.json"
        credentials_file.write_text(json.dumps(credentials))
        self.ug_simulator = Process(
            "simulator-uganda",
            [
                PYTHON,
                "manage.py",
                "mtn_sandbox",
                "--port",
                str(self.ug_sim_port),
                "--target-environment",
                "mtnuganda",
                "--currency",
                "UGX",
                "--credentials",
                str(credentials_file),
                "--delay-seconds",
                "1",
                "--seed",
                str(self.seed + 1),
                "--faults",
                json.dumps(self.faults),
            ],
            env,
            self.workdir / "simulator-uganda.log",
        )
        self.ug_simulator.start()
        self.manage(
            "mtn_account_set",
            "uganda",
            "--target-environment",
            "mtnuganda",
            "--currency",
            "UGX",
            "--base-url",
            self.gateway_mtn_url("uganda"),
            stdin=json.dumps(credentials),
        )

    def ledger_check(self) -> dict[str, Any]:
        """``manage.py ledger_check`` against this stack's database: its JSON summary."""
        done = subprocess.run(  # noqa: S603 - our own command
            [PYTHON, "manage.py", "ledger_check"],
            cwd=ROOT,
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        try:
            summary = json.loads(done.stdout)
        except ValueError:
            summary = {"ok": False, "problems": [f"no summary: {done.stdout}{done.stderr}"]}
        if done.returncode != 0 and summary.get("ok"):
            summary = {**summary, "ok": False, "problems": [f"exit {done.returncode}"]}
        return summary

    def start_web(self) -> None:
        self.web.start()
        wait_http(f"{self.base_url}/readyz", self.web)

    def kill_web(self, *, workers_too: bool) -> str:
        """SIGKILL gunicorn's master (and its workers, or let them notice and exit)."""
        self.web_killed_at.append(time.time())
        killed, forked = self.web.kill(children=workers_too)
        deadline = time.monotonic() + 15
        while (
            any(pid_alive(pid) for pid in forked) or port_open(self.web_port)
        ) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = [pid for pid in forked if pid_alive(pid)]
        for pid in left:  # orphans that did not go by themselves: ours, ended by pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return f"SIGKILL {killed} (workers {forked}; still alive after 15s: {left})"

    def cut_database(self, seconds: float) -> str:
        """PostgreSQL gone for ``seconds`` (every connection reset, new ones refused)."""
        cut_at = time.time()
        self.db_proxy.cut()
        time.sleep(seconds)
        self.db_proxy.restore()
        self.database_cuts.append((cut_at, time.time()))
        return f"PostgreSQL cut for {seconds}s, then restored"

    def stop_redis(self, seconds: float) -> str:
        """Redis gone for ``seconds``; a no-op without Redis (the cache is per process)."""
        if self.redis_proxy is None:
            return "no Redis configured (REDIS_URL unset): nothing to stop"
        self.redis_proxy.cut()
        time.sleep(seconds)
        self.redis_proxy.restore()
        return f"Redis stopped for {seconds}s, then restored"

    def set_faults(self, **values: Any) -> dict[str, Any]:
        """The same faults on every market's simulator; the default one's answer."""
        answers = {}
        for account, url in self.sim_urls().items():
            response = requests.post(f"{url}/_simulator/faults", json=values, timeout=5)
            response.raise_for_status()
            answers[account] = response.json()
        return answers["default"]

    def faults_off(self) -> None:
        self.set_faults(
            **{key: 0.0 for key in self.faults if key.endswith("_rate")},
            callback_delay_seconds=0.0,
        )

    def sim_transactions_by_account(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Each MTN account's simulator's transactions, by reference."""
        by_account = {}
        for account, url in self.sim_urls().items():
            response = requests.get(f"{url}/_simulator/transactions", timeout=30)
            response.raise_for_status()
            by_account[account] = {tx["reference_id"]: tx for tx in response.json()["results"]}
        return by_account

    def sim_transactions(self) -> dict[str, dict[str, Any]]:
        """Every market's transactions together (references are UUIDs: none is shared)."""
        merged: dict[str, dict[str, Any]] = {}
        for transactions in self.sim_transactions_by_account().values():
            merged.update(transactions)
        return merged

    def sim_callbacks(self) -> list[dict[str, Any]]:
        results = []
        for url in self.sim_urls().values():
            response = requests.get(f"{url}/_simulator/callbacks", timeout=30)
            response.raise_for_status()
            results.extend(response.json()["results"])
        return results

    def processes(self) -> list[Process]:
        return [
            p for p in (*self.workers, self.web, self.simulator, self.ug_simulator) if p is not None
        ]

    def close(self) -> None:
        for process in self.processes():
            with contextlib.suppress(Exception):
                process.stop()
        if self.receiver is not None:
            self.receiver.stop()
        for proxy in (self.db_proxy, self.redis_proxy):
            if proxy is not None:
                proxy.close()
        for mtn_proxy in self.mtn_proxies.values():
            mtn_proxy.close()
        if self.db is not None:
            self.db.drop()
