#!/usr/bin/env python3
"""`make bench`, capacity (issue 15): how the gateway holds up when MTN is slow, in one run.

Starts, on this machine and over loopback only: a fresh PostgreSQL database, Redis, the MTN
simulator, the gateway as production runs it (gunicorn with its own ``gunicorn.conf.py``
defaults, ``run_worker``) and a merchant webhook receiver, then measures:

1. **Whole cost.** Payments at a fixed rate whose MTN settles each one ``--settle-seconds``
   after accepting it (payer 46733123454 and the simulator's ``--delay-seconds``) and calls
   back; the merchant's webhook receiver counts deliveries. Server CPU per payment (gunicorn
   master, live and reaped workers, and every ``run_worker`` process, from ``/proc``) from
   create to the merchant's webhook, beside the bare insert baseline (``bench/baseline``)
   in the same run, sent by 32 clients as fast as they can (the stricter ratio, the one
   the issue's 23.5x was taken against) and at the payments' rate; and create -> webhook
   p50/p99. The gateway's idle CPU is printed too: it is in every figure.
2. **Capacity** with MTN answering after each of ``--latencies``: ``--clients`` merchant
   connections creating payments, a client reading a payment and one putting MTN's
   callback on a payment's callback door (each at ``--probe-rate`` a second). Per latency:
   creates/s, create p50/p99, read p99, callback-door p99, and create -> MTN's receipt
   p50/p99 (the simulator logs when each call arrived). MTN's own callbacks are switched
   off here (lost), so that only the measured callback client posts to the door.
3. **Half rate.** Creates sent at a fixed rate of half the saturating one (MTN at 0 s):
   create -> MTN's receipt p50/p99.
4. **Burst.** ``--burst`` creates as fast as ``--clients`` connections send them, with the
   gateway restarted under ``MTN_RATE_LIMIT``/``MTN_MAX_IN_FLIGHT`` from this environment
   (unset: the contract's defaults): the rate they reached MTN at, the most MTN calls the
   simulator saw at once, and whether each reached MTN exactly once.

Phases 2 and 3 run with the per-account MTN limits raised (``--capacity-rate-limit``,
``--capacity-max-in-flight``) so that they measure the gateway, not the limits.

The machine is shared and noisy: compare figures from one run (the ratios), and print the
load average beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import (  # noqa: E402 - the project root must be importable first
    PG,
    PYTHON,
    VENV,
    WEBHOOK_SECRET,
    _stat_ticks,
    children,
    free_port,
    machine_description,
    psql,
    wait_http,
)

LOG_DIR = ROOT / "var" / "bench"
HOST = "127.0.0.1"
PAYER = "256772123456"  # the simulator: SUCCESSFUL at once
SETTLING_PAYER = "46733123454"  # the simulator: PENDING, SUCCESSFUL --delay-seconds later
REQUESTTOPAY = "/collection/v1_0/requesttopay"
CONTRACT_RATE_LIMIT = "50"  # api-contract.md's defaults, when this environment sets none
CONTRACT_MAX_IN_FLIGHT = "32"


# --- a small HTTP/1.1 client on asyncio: cheap enough to share two cores with the server ---


class Conn:
    """One kept-alive connection; a request on a connection the server closed meanwhile is
    sent again once on a new one (creates carry an Idempotency-Key, so that is safe)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def drop(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        timeout: float = 60.0,
    ) -> tuple[int, bytes]:
        head = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{self.port}"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        head.append(f"Content-Length: {len(body)}")
        data = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        reused = self.writer is not None
        try:
            return await asyncio.wait_for(self._exchange(data), timeout)
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            self.drop()
            if not reused:
                raise
        except TimeoutError:
            self.drop()
            raise
        try:
            return await asyncio.wait_for(self._exchange(data), timeout)
        except BaseException:
            self.drop()
            raise

    async def _exchange(self, data: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        assert self.reader is not None  # noqa: S101 - set together
        self.writer.write(data)
        await self.writer.drain()
        line = await self.reader.readline()
        if not line:
            raise ConnectionResetError("connection closed before the answer")
        status = int(line.split(None, 2)[1])
        length, chunked, close = None, False, False
        while True:
            raw = await self.reader.readline()
            if raw in (b"\r\n", b"\n", b""):
                break
            name, _, value = raw.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value:
                chunked = True
            elif name == "connection" and value == "close":
                close = True
        if chunked:
            parts = []
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readline()
                    break
                parts.append(await self.reader.readexactly(size))
                await self.reader.readline()
            body = b"".join(parts)
        elif length is not None:
            body = await self.reader.readexactly(length)
        else:
            body = await self.reader.read()
            close = True
        if close:
            self.drop()
        return status, body


@dataclass
class Rec:
    """One request: when it was sent and answered (epoch seconds), its status, and for a
    create the payment's id."""

    t0: float
    t1: float
    status: int  # 0: no answer (connection error or timeout)
    payment_id: str = ""

    @property
    def ms(self) -> float:
        return (self.t1 - self.t0) * 1000


async def timed(conn: Conn, method: str, path: str, headers: dict, body: bytes) -> Rec:
    t0 = time.time()
    try:
        status, answer = await conn.request(method, path, headers, body)
    except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
        return Rec(t0, time.time(), 0)
    rec = Rec(t0, time.time(), status)
    if status == 201 and answer:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            rec.payment_id = str(json.loads(answer)["id"])
    return rec


Request = tuple[str, str, dict, bytes]  # method, path, headers, body


async def closed_loop(
    port: int,
    clients: int,
    make: Callable[[], Request],
    until: float,
    out: list[Rec],
    max_requests: int | None = None,
) -> None:
    """``clients`` connections, each sending its next request when the last is answered,
    until ``until`` (epoch seconds) or ``max_requests`` in all have been sent.

    The clients connect 10 ms apart, as merchants' connections arrive over time: opened all
    at once, most would be accepted by whichever gunicorn worker woke first and be served by
    its threads alone for as long as they are kept alive.
    """
    sent = [0]

    async def client(index: int) -> None:
        await asyncio.sleep(index * 0.01)
        conn = Conn(port)
        try:
            while time.time() < until and (max_requests is None or sent[0] < max_requests):
                sent[0] += 1
                out.append(await timed(conn, *make()))
        finally:
            conn.drop()

    await asyncio.gather(*(client(i) for i in range(clients)))


async def open_loop(
    port: int,
    rate: float,
    seconds: float,
    make: Callable[[], Request],
    pool: int = 64,
    *,
    fresh: bool = False,
) -> tuple[list[Rec], int]:
    """Requests at a fixed ``rate`` for ``seconds``, whatever the answers' pace, over at most
    ``pool`` connections at once (kept alive, or with ``fresh`` a new one per request).
    Returns the records and how many were sent late (all ``pool`` were waiting)."""
    free: list[Conn] = []
    slots = asyncio.Semaphore(pool)
    out: list[Rec] = []
    late = [0]

    async def one(due: float) -> None:
        async with slots:
            if time.time() - due > 0.05:
                late[0] += 1
            conn = free.pop() if free and not fresh else Conn(port)
            rec = await timed(conn, *make())
            out.append(rec)
            if fresh:
                conn.drop()
            else:
                free.append(conn)

    start = time.time()
    tasks = []
    for i in range(max(1, int(rate * seconds))):
        due = start + i / rate
        if (wait := due - time.time()) > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.create_task(one(due)))
    await asyncio.gather(*tasks)
    for conn in free:
        conn.drop()
    return out, late[0]


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank); nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


# --- what MTN received: the simulator's request log, read piece by piece ---------------------


class Receipts:
    """Every request-to-pay POST the simulator received: reference -> arrival times."""

    def __init__(self, sim_port: int) -> None:
        self.conn = Conn(sim_port)
        self.lock = asyncio.Lock()  # one request at a time on the one connection
        self.after = 0
        self.arrivals: dict[str, list[tuple[float, int | None]]] = {}

    async def poll(self) -> None:
        async with self.lock:
            path = f"/_simulator/requests?after={self.after}&method=POST&path={REQUESTTOPAY}"
            status, body = await self.conn.request("GET", path)
        if status != 200:
            raise RuntimeError(f"simulator request log: {status}")
        for entry in json.loads(body)["results"]:
            self.after = max(self.after, int(entry["seq"]))
            ref = str(entry.get("reference_id") or "").lower()
            arrived = float(entry.get("received_at", entry["at"]))
            self.arrivals.setdefault(ref, []).append((arrived, entry.get("status")))

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.poll()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
        await self.poll()

    def first(self, ref: str) -> float | None:
        arrivals = self.arrivals.get(ref)
        return min(t for t, _ in arrivals) if arrivals else None


def references(database: str) -> dict[str, str]:
    """payment id -> MTN reference id, for every payment in the bench's database that has
    one."""
    rows = psql("SELECT id, mtn_reference_id FROM payments_payment", database)
    pairs = (line.split("|") for line in rows.splitlines() if "|" in line)
    return {pid: ref.lower() for pid, ref in pairs if ref}


async def wait_for_receipts(
    receipts: Receipts, database: str, recs: list[Rec], timeout: float
) -> tuple[int, float, dict[str, str]]:
    """Wait (at most ``timeout``) until every payment created in ``recs`` reached MTN.

    Returns how many did not, the seconds waited, and payment id -> MTN reference (read
    again while waiting: a design may give a payment its reference only when it submits it).
    """
    ids = [r.payment_id for r in recs if r.status == 201 and r.payment_id]
    started = time.time()
    while True:
        ids_to_refs = references(database)
        await receipts.poll()
        missing = sum(1 for i in ids if receipts.first(ids_to_refs.get(i, "")) is None)
        if not missing or time.time() - started > timeout:
            return missing, time.time() - started, ids_to_refs
        await asyncio.sleep(1.0)


def receipt_latencies(
    recs: list[Rec], ids_to_refs: dict[str, str], receipts: Receipts
) -> tuple[list[float], int]:
    """create sent -> MTN received, in ms, for every create answered 201; and how many of
    those never reached MTN."""
    latencies, missing = [], 0
    for rec in recs:
        if rec.status != 201 or not rec.payment_id:
            continue
        arrived = receipts.first(ids_to_refs.get(rec.payment_id, ""))
        if arrived is None:
            missing += 1
        else:
            latencies.append((arrived - rec.t0) * 1000)
    return latencies, missing


# --- the merchant's webhook receiver ---------------------------------------------------------


class WebhookReceiver:
    """Counts webhook deliveries and remembers when each payment's final event arrived."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.deliveries = 0
        self.final_at: dict[str, float] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                now = time.time()
                data: dict[str, Any] = {}
                with contextlib.suppress(ValueError, AttributeError):
                    data = json.loads(raw).get("data") or {}
                with receiver.lock:
                    receiver.deliveries += 1
                    if data.get("status") in ("SUCCESSFUL", "FAILED") and data.get("id"):
                        receiver.final_at.setdefault(str(data["id"]), now)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def count(self, ids: set[str]) -> int:
        with self.lock:
            return sum(1 for i in ids if i in self.final_at)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- processes ---------------------------------------------------------------------------------


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process, its reaped children and its live descendants, in seconds.

    A child's time enters its parent's cutime/cstime only once it is reaped, so a live
    child is counted through its own entry and a reaped one through its parent's, never
    twice (a gunicorn worker replaced during a phase is still counted).
    """
    try:
        own, reaped = _stat_ticks(pid)
    except (OSError, ValueError):
        return 0.0
    total = (own + reaped) / os.sysconf("SC_CLK_TCK")
    return total + sum(tree_cpu_seconds(child) for child in children(pid))


def start(args: list[str], env: dict[str, str], log: str) -> subprocess.Popen:
    with open(LOG_DIR / log, "a") as handle:
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen, wait: float = 40.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@dataclass
class Gateway:
    """gunicorn (production ``gunicorn.conf.py``) and ``run_worker`` process(es)."""

    env: dict[str, str]
    port: int
    workers: int
    procs: list[subprocess.Popen] = field(default_factory=list)

    def start(self, extra_env: dict[str, str]) -> None:
        env = {**self.env, **extra_env, "GUNICORN_BIND": f"{HOST}:{self.port}"}
        self.procs = [
            start(
                [str(VENV / "gunicorn"), "--config", "gunicorn.conf.py", "gateway.wsgi"],
                env,
                "capacity-gunicorn.log",
            )
        ]
        self.procs += [
            start([PYTHON, "manage.py", "run_worker"], env, "capacity-worker.log")
            for _ in range(self.workers)
        ]
        wait_http(f"http://{HOST}:{self.port}/healthz", timeout=60)

    def stop(self) -> None:
        for proc in self.procs:
            stop(proc)
        self.procs = []

    def cpu_seconds(self, *, web_only: bool = False) -> float:
        procs = self.procs[:1] if web_only else self.procs
        return sum(tree_cpu_seconds(p.pid) for p in procs)

    def web_workers(self) -> int:
        return len(children(self.procs[0].pid))


def simulator(port: int, path: str, body: dict | None = None) -> dict:
    """A call to the simulator's control API (between phases: it blocks)."""
    import urllib.request

    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - loopback only
        f"http://{HOST}:{port}/_simulator/{path}",
        data=data,
        method="POST" if data is not None else "GET",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.loads(response.read())


def load_average() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


# --- the run -------------------------------------------------------------------------------


@dataclass
class Bench:
    args: argparse.Namespace
    env: dict[str, str]
    gateway: Gateway
    sim_port: int
    receipts: Receipts
    hooks: WebhookReceiver
    auth: dict[str, str]
    read_path: str = ""
    door: tuple[str, bytes] = ("", b"")  # callback path and MTN's body for the read payment
    figures: dict[str, Any] = field(default_factory=dict)
    counter: int = 0

    def create(self, payer: str = PAYER) -> Request:
        self.counter += 1
        body = json.dumps({"amount": "15.00", "currency": "EUR", "payer": payer}).encode()
        headers = {**self.auth, "Idempotency-Key": f"cap-{self.counter}-{uuid.uuid4().hex[:8]}"}
        return ("POST", "/api/v1/payments", headers, body)

    def read(self) -> Request:
        return ("GET", self.read_path, self.auth, b"")

    def callback(self) -> Request:
        path, body = self.door
        return ("PUT", path, {"Content-Type": "application/json"}, body)

    def insert(self) -> Request:
        body = json.dumps({"name": "row", "amount": "15.00"}).encode()
        return ("POST", "/bench/insert", {"Content-Type": "application/json"}, body)

    # -- setup --

    async def seed(self) -> None:
        """One payment MTN calls back for: its read path and its callback door."""
        conn = Conn(self.gateway.port)
        rec = await timed(conn, *self.create())
        if rec.status != 201:
            raise RuntimeError(f"seed payment: HTTP {rec.status}")
        self.read_path = f"/api/v1/payments/{rec.payment_id}"
        deadline = time.time() + 60
        sent: list[dict] = []
        while time.time() < deadline:
            ref = references(self.args.database).get(rec.payment_id)
            status, answer = await conn.request("GET", self.read_path, self.auth)
            sent = [
                c
                for c in simulator(self.sim_port, "callbacks")["results"]
                if c["reference_id"] == ref and c["outcome"] == "sent"
            ]
            if status == 200 and json.loads(answer)["status"] == "SUCCESSFUL" and sent:
                break
            await asyncio.sleep(0.5)
        else:
            raise RuntimeError("the seed payment did not become SUCCESSFUL through MTN's callback")
        conn.drop()
        self.door = (
            urlsplit(sent[0]["url"]).path,
            json.dumps(sent[0]["body"], separators=(",", ":")).encode(),
        )

    # -- 1. whole cost --

    async def whole_cost(self) -> None:
        args = self.args
        rate, seconds = args.cpu_rate, args.cpu_seconds
        port = self.gateway.port
        await asyncio.sleep(2)
        # What the gateway burns doing nothing (gunicorn's loops, the worker's polling): a
        # part of every figure below, larger the lower the rate.
        idle_before, idle_started = self.gateway.cpu_seconds(), time.time()
        await asyncio.sleep(5)
        idle_ms_per_s = (
            (self.gateway.cpu_seconds() - idle_before) * 1000 / (time.time() - idle_started)
        )
        web_before = self.gateway.cpu_seconds(web_only=True)
        inserts, _ = await open_loop(port, rate, seconds, self.insert)
        insert_cpu = self.gateway.cpu_seconds(web_only=True) - web_before
        ok_inserts = sum(1 for r in inserts if r.status == 201)
        await asyncio.sleep(1)
        # The same insert as fast as 32 clients send it (run.py's 32-client figure, which
        # the "23.5x the insert" was measured against): CPU per request is lowest
        # at saturation, so this ratio is the stricter one.
        web_before = self.gateway.cpu_seconds(web_only=True)
        saturated: list[Rec] = []
        await closed_loop(port, 32, self.insert, time.time() + seconds, saturated)
        saturated_cpu = self.gateway.cpu_seconds(web_only=True) - web_before
        ok_saturated = sum(1 for r in saturated if r.status == 201)
        await asyncio.sleep(2)

        cpu_before = self.gateway.cpu_seconds()
        creates, late = await open_loop(port, rate, seconds, lambda: self.create(SETTLING_PAYER))
        ids = {r.payment_id for r in creates if r.status == 201}
        deadline = time.time() + args.drain_timeout
        while self.hooks.count(ids) < len(ids) and time.time() < deadline:
            await asyncio.sleep(0.2)
        cpu = self.gateway.cpu_seconds() - cpu_before
        delivered = self.hooks.count(ids)
        to_webhook = [
            (self.hooks.final_at[r.payment_id] - r.t0) * 1000
            for r in creates
            if r.payment_id in self.hooks.final_at
        ]
        insert_ms = insert_cpu * 1000 / max(ok_inserts, 1)
        saturated_ms = saturated_cpu * 1000 / max(ok_saturated, 1)
        payment_ms = cpu * 1000 / max(delivered, 1)
        self.figures["whole_cost"] = {
            "rate_per_s": rate,
            "seconds": seconds,
            "settle_seconds": args.settle_seconds,
            "payments_created": len(ids),
            "webhooks_received": delivered,
            "create_errors": sum(1 for r in creates if r.status != 201),
            "sent_late": late,
            "cpu_ms_per_payment": payment_ms,
            "insert_cpu_ms_per_request": insert_ms,
            "idle_cpu_ms_per_s": idle_ms_per_s,
            "ratio_to_insert": payment_ms / insert_ms if insert_ms else float("nan"),
            "insert_saturated_cpu_ms_per_request": saturated_ms,
            "insert_saturated_per_s": ok_saturated / seconds,
            "ratio_to_saturated_insert": (
                payment_ms / saturated_ms if saturated_ms else float("nan")
            ),
            "create_to_webhook_p50_ms": pct(to_webhook, 50),
            "create_to_webhook_p99_ms": pct(to_webhook, 99),
            "load_average": load_average(),
        }
        w = self.figures["whole_cost"]
        print(
            f"  whole cost: {delivered}/{len(ids)} payments to the merchant's webhook, "
            f"{payment_ms:.2f} ms CPU per payment = {w['ratio_to_saturated_insert']:.1f} x the "
            f"insert's {saturated_ms:.2f} ms at 32 clients ({w['insert_saturated_per_s']:.0f}/s)"
            f", {w['ratio_to_insert']:.1f} x its {insert_ms:.2f} ms at {rate:g}/s; "
            f"idle {idle_ms_per_s:.1f} ms CPU/s; "
            f"create -> webhook p50 {w['create_to_webhook_p50_ms']:.0f} ms "
            f"p99 {w['create_to_webhook_p99_ms']:.0f} ms (load {w['load_average']})",
            flush=True,
        )

    # -- 2. capacity at each latency --

    async def capacity(self, latency: float) -> dict[str, Any]:
        args = self.args
        simulator(self.sim_port, "latency", {"seconds": latency})
        port = self.gateway.port
        creates: list[Rec] = []
        reads: list[Rec] = []
        doors: list[Rec] = []
        started = time.time()
        window = (started + args.warmup, started + args.warmup + args.seconds)
        # Each client stops sending at the end of the window; what it sent before is waited
        # for, so a slow answer still counts. The read and the callback are sent at a fixed
        # rate, not one after another (one client waiting 15 s per answer would give a p99 of
        # one or two samples), each on a new connection: gunicorn's gthread workers keep a
        # connection to the worker that accepted it, so one kept-alive connection would
        # measure the luck of its worker (idle threads or none), not the gateway.
        probe_seconds = window[1] - time.time()
        probes_late: list[int] = []

        async def probe(make: Callable[[], Request], out: list[Rec]) -> None:
            recs, late = await open_loop(
                port, args.probe_rate, probe_seconds, make, pool=64, fresh=True
            )
            out.extend(recs)
            probes_late.append(late)

        await asyncio.gather(
            closed_loop(port, args.clients, self.create, window[1], creates),
            probe(self.read, reads),
            probe(self.callback, doors),
        )

        def measured(recs: list[Rec]) -> list[Rec]:
            return [r for r in recs if window[0] <= r.t0 < window[1]]

        done_in_window = [r for r in creates if window[0] <= r.t1 < window[1] and r.status == 201]
        m_creates, m_reads, m_doors = measured(creates), measured(reads), measured(doors)
        missing, drained, ids_to_refs = await wait_for_receipts(
            self.receipts, args.database, creates, args.drain_timeout
        )
        to_mtn, _ = receipt_latencies(m_creates, ids_to_refs, self.receipts)
        result = {
            "latency_s": latency,
            "creates_per_s": len(done_in_window) / args.seconds,
            "create_p50_ms": pct([r.ms for r in m_creates], 50),
            "create_p99_ms": pct([r.ms for r in m_creates], 99),
            "read_p99_ms": pct([r.ms for r in m_reads], 99),
            "callback_p99_ms": pct([r.ms for r in m_doors], 99),
            "to_mtn_p50_ms": pct(to_mtn, 50),
            "to_mtn_p99_ms": pct(to_mtn, 99),
            "creates": len(m_creates),
            "reads": len(m_reads),
            "callbacks": len(m_doors),
            "errors": sum(1 for r in m_creates + m_reads + m_doors if r.status not in (200, 201)),
            # Reads and callbacks sent late: all 64 connections of theirs were waiting.
            "probes_sent_late": sum(probes_late),
            "never_reached_mtn": missing,
            "seconds_to_drain": drained,
            "load_average": load_average(),
        }
        print(
            f"  MTN {latency:>4g} s: {result['creates_per_s']:6.1f} creates/s, create p50 "
            f"{result['create_p50_ms']:.0f} p99 {result['create_p99_ms']:.0f} ms, read p99 "
            f"{result['read_p99_ms']:.0f} ms, callback p99 {result['callback_p99_ms']:.0f} ms, "
            f"-> MTN p50 {result['to_mtn_p50_ms']:.0f} p99 {result['to_mtn_p99_ms']:.0f} ms "
            f"(reads {len(m_reads)}, callbacks {len(m_doors)}, sent late "
            f"{result['probes_sent_late']}, errors {result['errors']}, "
            f"never reached MTN {missing}; load {result['load_average']})",
            flush=True,
        )
        return result

    # -- 3. half the saturating rate --

    async def half_rate(self, rate: float) -> None:
        args = self.args
        simulator(self.sim_port, "latency", {"seconds": 0})
        recs, late = await open_loop(self.gateway.port, rate, args.seconds, self.create)
        missing, _, ids_to_refs = await wait_for_receipts(
            self.receipts, args.database, recs, args.drain_timeout
        )
        to_mtn, _ = receipt_latencies(recs, ids_to_refs, self.receipts)
        self.figures["half_rate"] = result = {
            "rate_per_s": rate,
            "creates": len(recs),
            "sent_late": late,
            "errors": sum(1 for r in recs if r.status != 201),
            "create_p99_ms": pct([r.ms for r in recs], 99),
            "to_mtn_p50_ms": pct(to_mtn, 50),
            "to_mtn_p99_ms": pct(to_mtn, 99),
            "never_reached_mtn": missing,
            "load_average": load_average(),
        }
        print(
            f"  half rate ({rate:.1f}/s, MTN 0 s): create p99 {result['create_p99_ms']:.0f} ms, "
            f"-> MTN p50 {result['to_mtn_p50_ms']:.0f} p99 {result['to_mtn_p99_ms']:.0f} ms "
            f"({len(recs)} creates, {late} sent late, errors {result['errors']}, never reached "
            f"MTN {missing}; load {result['load_average']})",
            flush=True,
        )

    # -- 4. burst --

    async def burst(self, limits: dict[str, str]) -> None:
        args = self.args
        simulator(self.sim_port, "latency", {"seconds": args.burst_latency})
        simulator(self.sim_port, "load/reset-peak", {})
        recs: list[Rec] = []
        started = time.time()
        await closed_loop(
            self.gateway.port,
            args.clients,
            self.create,
            started + args.burst_timeout,
            recs,
            max_requests=args.burst,
        )
        sent_seconds = time.time() - started
        created = [r for r in recs if r.status == 201]
        remaining = max(args.burst_timeout - sent_seconds, 10.0)
        missing, _, ids_to_refs = await wait_for_receipts(
            self.receipts, args.database, recs, remaining
        )
        refs = [ids_to_refs[r.payment_id] for r in created if r.payment_id in ids_to_refs]
        peak = simulator(self.sim_port, "load")["peak_in_flight"]
        arrivals = sorted(t for ref in refs if (t := self.receipts.first(ref)) is not None)
        accepted_twice = sum(
            1
            for ref in refs
            if sum(1 for _, status in self.receipts.arrivals.get(ref, []) if status == 202) > 1
        )
        posted_again = sum(1 for ref in refs if len(self.receipts.arrivals.get(ref, [])) > 1)
        span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else float("nan")
        # The steady rate: the middle 80 % of arrivals, without the start and the tail.
        lo, hi = len(arrivals) // 10, len(arrivals) * 9 // 10
        steady = (hi - lo) / (arrivals[hi] - arrivals[lo]) if hi > lo + 1 else float("nan")
        per_second: dict[int, int] = {}
        for t in arrivals:
            per_second[int(t)] = per_second.get(int(t), 0) + 1
        self.figures["burst"] = result = {
            "limits": limits,
            "mtn_latency_s": args.burst_latency,
            "creates_sent": len(recs),
            "creates_answered_201": len(created),
            "create_p99_ms": pct([r.ms for r in recs], 99),
            "seconds_to_send": sent_seconds,
            "reached_mtn": len(arrivals),
            "never_reached_mtn": missing,
            "accepted_twice_by_mtn": accepted_twice,
            "posted_more_than_once": posted_again,
            "mtn_rate_mean_per_s": (len(arrivals) - 1) / span if span else float("nan"),
            "mtn_rate_steady_per_s": steady,
            "mtn_rate_max_1s_window": max(per_second.values(), default=0),
            "mtn_peak_in_flight": peak,
            "load_average": load_average(),
        }
        print(
            f"  burst of {len(recs)} creates ({len(created)} answered 201 in {sent_seconds:.0f} s"
            f", create p99 {result['create_p99_ms']:.0f} ms), MTN at {args.burst_latency:g} s, "
            f"limits {limits}: reached MTN {len(arrivals)} at {result['mtn_rate_mean_per_s']:.1f}"
            f"/s (steady {steady:.1f}/s, busiest second {result['mtn_rate_max_1s_window']}), "
            f"at most {peak} MTN calls at once; never reached MTN "
            f"{result['never_reached_mtn']}, accepted twice {accepted_twice}, posted again "
            f"{posted_again} (load {result['load_average']})",
            flush=True,
        )


def environment(args: argparse.Namespace, sim_port: int, web_port: int) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{PG['user']}@{PG['host']}:{PG['port']}/{args.database}",
        "REDIS_URL": args.redis_url,
        "DEBUG": "false",
        "SECRET_KEY": "bench-" + uuid.uuid4().hex * 2,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "BENCH_ENDPOINTS": "true",
        "RATE_LIMIT_DEFAULT": "100000000/s",
        "CALLBACK_RATE_LIMIT": "100000000/s",
        "MTN_BASE_URL": f"http://{HOST}:{sim_port}",
        "MTN_CALLBACK_URL": f"http://{HOST}:{web_port}",
        "MTN_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        **{
            f"MTN_{product}_{name}": str(uuid.uuid4()) if name == "API_USER" else uuid.uuid4().hex
            for product in ("COLLECTION", "DISBURSEMENT")
            for name in ("SUBSCRIPTION_KEY", "API_USER", "API_KEY")
        },
        "FIELD_ENCRYPTION_KEYS": "YmVuY2gtb25seS1ub3QtYS1zZWNyZXQtMzItYnl0ZXM=",
        "MTN_STATUS_POLL_AFTER_SECONDS": "3600",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("MTN_RATE_LIMIT", "MTN_MAX_IN_FLIGHT", "WEB_CONCURRENCY", "GUNICORN_THREADS"):
        env.pop(name, None)  # set per phase below, or the production defaults
    return env


async def run(args: argparse.Namespace) -> dict[str, Any]:
    print(f"machine: {machine_description()}", flush=True)
    print(f"load average at the start: {load_average()}", flush=True)
    psql(f"DROP DATABASE IF EXISTS {args.database}")
    psql(f"CREATE DATABASE {args.database}")
    redis_db = urlsplit(args.redis_url).path.lstrip("/") or "0"
    subprocess.run(["redis-cli", "-n", redis_db, "FLUSHDB"], check=False, capture_output=True)
    sim_port, web_port = free_port(), free_port()
    env = environment(args, sim_port, web_port)
    hooks = WebhookReceiver()
    subprocess.run([PYTHON, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    created = subprocess.run(
        [
            PYTHON,
            "manage.py",
            "create_tenant",
            "bench",
            "--name",
            "Bench",
            "--webhook-url",
            f"http://{HOST}:{hooks.port}/hook",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    api_key = json.loads(created.stdout)["api_key"]
    sim = start(
        [
            PYTHON,
            "manage.py",
            "mtn_sandbox",
            "--port",
            str(sim_port),
            "--delay-seconds",
            str(args.settle_seconds),
        ],
        env,
        "capacity-simulator.log",
    )
    gateway = Gateway(env, web_port, args.run_workers)
    capacity_limits = {
        "MTN_RATE_LIMIT": str(args.capacity_rate_limit),
        "MTN_MAX_IN_FLIGHT": str(args.capacity_max_in_flight),
    }
    burst_limits = {
        "MTN_RATE_LIMIT": os.environ.get("MTN_RATE_LIMIT") or CONTRACT_RATE_LIMIT,
        "MTN_MAX_IN_FLIGHT": os.environ.get("MTN_MAX_IN_FLIGHT") or CONTRACT_MAX_IN_FLIGHT,
    }
    stop_polling = asyncio.Event()
    bench: Bench | None = None
    try:
        wait_http(f"http://{HOST}:{sim_port}/_simulator/faults")
        gateway.start(capacity_limits)
        print(
            f"gateway: gunicorn.conf.py defaults ({gateway.web_workers()} web workers), "
            f"{args.run_workers} run_worker; limits for phases 1-3: {capacity_limits}",
            flush=True,
        )
        receipts = Receipts(sim_port)
        poller = asyncio.create_task(receipts.run(stop_polling))
        bench = Bench(
            args=args,
            env=env,
            gateway=gateway,
            sim_port=sim_port,
            receipts=receipts,
            hooks=hooks,
            auth={
                "X-API-Key": api_key,
                "X-Tenant-ID": "bench",
                "Content-Type": "application/json",
            },
        )
        await bench.seed()
        phases = set(args.phases.split(","))
        if "cost" in phases:
            await bench.whole_cost()
        # From here on MTN's own callbacks are lost: only the measured client uses the door.
        simulator(sim_port, "faults", {"lost_callback_rate": 1.0})
        rows = []
        if "capacity" in phases:
            for latency in [float(x) for x in args.latencies.split(",")]:
                rows.append(await bench.capacity(latency))
                if latency == 0 and "half" in phases:
                    await bench.half_rate(args.half_rate or rows[-1]["creates_per_s"] / 2)
        bench.figures["capacity"] = rows
        if "burst" in phases:
            gateway.stop()
            gateway.start(burst_limits)
            await bench.burst(burst_limits)
        stop_polling.set()
        await poller
    finally:
        stop_polling.set()
        gateway.stop()
        stop(sim, wait=10)
        hooks.stop()
    figures = bench.figures if bench else {}
    figures["machine"] = machine_description()
    print(format_table(figures), flush=True)
    return figures


def format_table(figures: dict[str, Any]) -> str:
    lines = [
        "",
        "| MTN answers in | creates/s | create p50 | create p99 | read p99 | callback door p99 "
        "| create -> MTN p50 | create -> MTN p99 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    rows = figures.get("capacity", [])
    for r in rows:
        lines.append(
            f"| {r['latency_s']:g} s | {r['creates_per_s']:.1f} | {r['create_p50_ms']:,.0f} ms "
            f"| {r['create_p99_ms']:,.0f} ms | {r['read_p99_ms']:,.0f} ms "
            f"| {r['callback_p99_ms']:,.0f} ms | {r['to_mtn_p50_ms']:,.0f} ms "
            f"| {r['to_mtn_p99_ms']:,.0f} ms |"
        )
    by_latency = {r["latency_s"]: r for r in rows}
    if 0.0 in by_latency and 2.0 in by_latency:
        fast, slow = by_latency[0.0], by_latency[2.0]

        def ratio(key: str) -> str:
            return f"{slow[key] / fast[key]:.2f}" if fast[key] else "-"

        lines.append(
            f"\nMTN at 2 s against 0 s: creates/s {ratio('creates_per_s')} (target >= 0.8), "
            f"create p99 {ratio('create_p99_ms')}x, read p99 {ratio('read_p99_ms')}x, "
            f"callback p99 {ratio('callback_p99_ms')}x (targets <= 2x)"
        )
    if half := figures.get("half_rate"):
        lines.append(
            f"Half the saturating rate ({half['rate_per_s']:.1f}/s), MTN at 0 s: create -> MTN "
            f"p50 {half['to_mtn_p50_ms']:.0f} ms, p99 {half['to_mtn_p99_ms']:.0f} ms "
            "(target p99 < 250 ms)"
        )
    if burst := figures.get("burst"):
        lines.append(
            f"Burst of {burst['creates_sent']} creates, MTN at {burst['mtn_latency_s']:g} s, "
            f"{burst['limits']}: reached MTN {burst['reached_mtn']} at "
            f"{burst['mtn_rate_steady_per_s']:.1f}/s steady ({burst['mtn_rate_mean_per_s']:.1f}"
            f"/s overall, busiest second {burst['mtn_rate_max_1s_window']}), at most "
            f"{burst['mtn_peak_in_flight']} MTN calls at once; never reached MTN "
            f"{burst['never_reached_mtn']}, accepted twice {burst['accepted_twice_by_mtn']}"
        )
    if cost := figures.get("whole_cost"):
        lines.append(
            f"Whole cost ({cost['rate_per_s']:g} payments/s for {cost['seconds']:g} s, MTN "
            f"settling each {cost['settle_seconds']:g} s after accepting it): "
            f"{cost['cpu_ms_per_payment']:.2f} ms server CPU per payment, create to the "
            f"merchant's webhook = {cost['ratio_to_saturated_insert']:.1f} x the insert "
            f"baseline's {cost['insert_saturated_cpu_ms_per_request']:.2f} ms at 32 clients "
            f"(target <= 12x), {cost['ratio_to_insert']:.1f} x its "
            f"{cost['insert_cpu_ms_per_request']:.2f} ms at the same "
            f"{cost['rate_per_s']:g}/s; create -> webhook "
            f"p50 {cost['create_to_webhook_p50_ms']:,.0f} ms, p99 "
            f"{cost['create_to_webhook_p99_ms']:,.0f} ms "
            f"({cost['webhooks_received']}/{cost['payments_created']} delivered)"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="measured, per latency")
    parser.add_argument("--warmup", type=float, default=5.0, help="before each measurement")
    parser.add_argument("--clients", type=int, default=64, help="merchant connections creating")
    parser.add_argument("--latencies", default="0,0.5,2", help="MTN's answer delays, seconds")
    parser.add_argument(
        "--probe-rate", type=float, default=4.0, help="reads/s and callbacks/s beside the creates"
    )
    parser.add_argument(
        "--half-rate", type=float, default=0.0, help="creates/s (default: half of MTN at 0 s)"
    )
    parser.add_argument("--cpu-rate", type=float, default=10.0, help="payments/s, whole cost")
    parser.add_argument("--cpu-seconds", type=float, default=20.0)
    parser.add_argument("--settle-seconds", type=float, default=0.3)
    parser.add_argument("--burst", type=int, default=5000, help="creates in the burst")
    parser.add_argument("--burst-latency", type=float, default=0.5, help="MTN's, in the burst")
    parser.add_argument("--burst-timeout", type=float, default=300.0)
    parser.add_argument("--drain-timeout", type=float, default=120.0)
    parser.add_argument("--capacity-rate-limit", type=int, default=5000)
    parser.add_argument("--capacity-max-in-flight", type=int, default=400)
    parser.add_argument("--run-workers", type=int, default=1, help="run_worker processes")
    parser.add_argument("--database", default="momo_bench_capacity")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument(
        "--phases", default="cost,capacity,half,burst", help="which to run (comma-separated)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if not args.database.startswith("momo_bench"):
        parser.error("--database must be a momo_bench* database: it is dropped first")
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    figures = asyncio.run(run(args))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
