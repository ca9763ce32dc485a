#!/usr/bin/env python3
"""Payout batches, measured: accepting a 5,000-item batch, and sending it to MTN.

``accept`` (the default): a fresh PostgreSQL database, gunicorn with the production settings
(one web worker, so that its memory is the request's), no worker running. Posts a 5,000-item
batch as JSON and as CSV, several times each, and reports each request's time, the web
worker's peak resident memory growth while it ran, and, as the baseline from the same run,
the time of one ``POST /payouts`` (the ratio says what one batch item costs against a
single payout).

``--dispatch`` (needs the dispatcher of ``run_worker``, which sends payouts within each MTN
account's limits): the simulator at ``--mtn-latency`` seconds, ``MTN_RATE_LIMIT`` and
``MTN_MAX_IN_FLIGHT`` set, ``--workers`` run_worker processes. Posts one 5,000-item batch,
and while it is being sent, another tenant's single payments every half second; reports
how long the batch took to reach MTN (first to last submission, from the rows'
``submitted_at``), the submission rate, the most submissions in any one-second window, and
how long the other tenant's payments waited from create to submission.

    .venv/bin/python bench/batches.py                       # accept
    .venv/bin/python bench/batches.py --dispatch            # after the dispatcher lands
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import (  # noqa: E402 - after the path is set
    LOG_DIR,
    PG,
    PYTHON,
    ROOT,
    VENV,
    Processes,
    children,
    free_port,
    psql,
    rss_kb,
    wait_http,
)

DB_NAME = "momo_bench_batches"


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict, float]:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 - loopback
            answer = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        answer, status = exc.read(), exc.code
    return status, json.loads(answer or b"{}"), time.perf_counter() - started


def batch_json(count: int, currency: str) -> bytes:
    items = [
        {
            "payee": f"2567{n:08d}",
            "amount": "1.00" if currency == "EUR" else "1000",
            "reference": f"emp-{n:05d}",
            "description": "December salary",
        }
        for n in range(count)
    ]
    return json.dumps({"currency": currency, "reference": "bench", "items": items}).encode()


def batch_csv(count: int) -> bytes:
    lines = ["payee,amount,reference,description"]
    lines += [f"2567{n:08d},1.00,emp-{n:05d},December salary" for n in range(count)]
    return ("\r\n".join(lines) + "\r\n").encode()


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout


def environment(sim_port: int, **extra: str) -> dict[str, str]:
    import os

    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{PG['user']}@{PG['host']}:{PG['port']}/{DB_NAME}",
        "REDIS_URL": "redis://127.0.0.1:6379/13",
        "DEBUG": "false",
        "SECRET_KEY": "bench-" + uuid.uuid4().hex * 2,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "RATE_LIMIT_DEFAULT": "100000000/s",
        "MTN_BASE_URL": f"http://127.0.0.1:{sim_port}",
        "MTN_WEBHOOK_SECRET": "bench-mtn-webhook-secret",
        **{
            f"MTN_{product}_{name}": str(uuid.uuid4()) if name == "API_USER" else uuid.uuid4().hex
            for product in ("COLLECTION", "DISBURSEMENT")
            for name in ("SUBSCRIPTION_KEY", "API_USER", "API_KEY")
        },
        "FIELD_ENCRYPTION_KEYS": "YmVuY2gtb25seS1ub3QtYS1zZWNyZXQtMzItYnl0ZXM=",
        "MTN_STATUS_POLL_AFTER_SECONDS": "3600",
        "DB_CONN_MAX_AGE": "600",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def tenant(env: dict[str, str], slug: str) -> dict[str, str]:
    key = json.loads(manage(env, "create_tenant", slug, "--name", slug))["api_key"]
    manage(env, "balance_adjust", slug, "EUR", "100000000", "--reason", "bench")
    return {"X-API-Key": key, "X-Tenant-ID": slug}


def measure_accept(base: str, web_pid: int, auth: dict[str, str], *, count: int, runs: int):
    json_headers = {**auth, "Content-Type": "application/json"}
    csv_headers = {**auth, "Content-Type": "text/csv"}
    # Warm-up: imports, connections and caches of the web worker, as a running server has.
    for n in range(3):
        post(
            f"{base}/api/v1/payout_batches",
            batch_json(100, "EUR"),
            {**json_headers, "Idempotency-Key": f"warm-{n}"},
        )
        post(
            f"{base}/api/v1/payouts",
            json.dumps({"amount": "1.00", "currency": "EUR", "payee": "256772123456"}).encode(),
            {**json_headers, "Idempotency-Key": f"warm-payout-{n}"},
        )
    single = []
    for n in range(20):
        status, _, seconds = post(
            f"{base}/api/v1/payouts",
            json.dumps({"amount": "1.00", "currency": "EUR", "payee": "256772123456"}).encode(),
            {**json_headers, "Idempotency-Key": f"payout-{n}"},
        )
        assert status == 201, status
        single.append(seconds)
    rows = []
    for kind, body, headers, url in (
        ("JSON", batch_json(count, "EUR"), json_headers, f"{base}/api/v1/payout_batches"),
        ("CSV", batch_csv(count), csv_headers, f"{base}/api/v1/payout_batches?currency=EUR"),
    ):
        for n in range(runs):
            before, _ = rss_kb(web_pid)
            # VmHWM is the process's peak since it started: reset it so that it is this request's.
            Path(f"/proc/{web_pid}/clear_refs").write_text("5")
            status, answer, seconds = post(
                url, body, {**headers, "Idempotency-Key": f"{kind}-{n}-{uuid.uuid4()}"}
            )
            assert status == 201, (status, answer)
            assert answer["count"] == count
            _, peak = rss_kb(web_pid)
            rows.append((kind, len(body), seconds, (peak - before) / 1024))
    return single, rows


def run_accept(args: argparse.Namespace) -> None:
    sim_port, web_port = free_port(), free_port()
    env = environment(sim_port)
    prepare(env)
    auth = tenant(env, "bench")
    procs = Processes()
    try:
        procs.start(
            [PYTHON, "manage.py", "mtn_sandbox", "--port", str(sim_port), "--delay-seconds", "0"],
            env,
            str(LOG_DIR / "batches-simulator.log"),
        )
        master = procs.start(
            [
                str(VENV / "gunicorn"),
                "gateway.wsgi",
                "--workers",
                "1",
                "--threads",
                "1",
                "--bind",
                f"127.0.0.1:{web_port}",
                "--log-level",
                "warning",
            ],
            env,
            str(LOG_DIR / "batches-gunicorn.log"),
        )
        base = f"http://127.0.0.1:{web_port}"
        wait_http(f"{base}/healthz")
        [web_pid] = children(master.pid)
        single, rows = measure_accept(base, web_pid, auth, count=args.items, runs=args.runs)
    finally:
        procs.stop_all()
    one = statistics.median(single)
    print(f"\nBaseline: one POST /payouts, median of {len(single)}: {one * 1000:.1f} ms")
    print(f"\n{args.items}-item batch, one request each (web worker: gunicorn, 1 sync worker):")
    print("| body | size | time | x one payout | per item | peak RSS growth |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for kind, size, seconds, growth in rows:
        print(
            f"| {kind} | {size / 1024:.0f} KB | {seconds:.2f} s | {seconds / one:.0f} | "
            f"{seconds / args.items * 1e6:.0f} us | {growth:+.1f} MB |"
        )


def prepare(env: dict[str, str]) -> None:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    psql(f"DROP DATABASE IF EXISTS {DB_NAME}")
    psql(f"CREATE DATABASE {DB_NAME}")
    subprocess.run(["redis-cli", "-n", "13", "FLUSHDB"], check=False, capture_output=True)
    manage(env, "migrate", "-v", "0")


def run_dispatch(args: argparse.Namespace) -> None:
    sim_port, web_port = free_port(), free_port()
    env = environment(
        sim_port,
        MTN_RATE_LIMIT=str(args.rate_limit),
        MTN_MAX_IN_FLIGHT=str(args.max_in_flight),
    )
    prepare(env)
    payroll = tenant(env, "payroll")
    shop = tenant(env, "shop")
    procs = Processes()
    try:
        procs.start(
            [
                PYTHON,
                "manage.py",
                "mtn_sandbox",
                "--port",
                str(sim_port),
                "--delay-seconds",
                str(args.mtn_latency),
            ],
            env,
            str(LOG_DIR / "batches-simulator.log"),
        )
        procs.start(
            [
                str(VENV / "gunicorn"),
                "gateway.wsgi",
                "--workers",
                "2",
                "--bind",
                f"127.0.0.1:{web_port}",
                "--log-level",
                "warning",
            ],
            env,
            str(LOG_DIR / "batches-gunicorn.log"),
        )
        base = f"http://127.0.0.1:{web_port}"
        wait_http(f"{base}/healthz")
        for n in range(args.workers):
            procs.start(
                [PYTHON, "manage.py", "run_worker"], env, str(LOG_DIR / f"batches-worker{n}.log")
            )
        status, batch, seconds = post(
            f"{base}/api/v1/payout_batches",
            batch_json(args.items, "EUR"),
            {**payroll, "Content-Type": "application/json", "Idempotency-Key": "batch"},
        )
        assert status == 201, (status, batch)
        print(f"batch of {args.items} accepted in {seconds:.2f} s")
        stop = threading.Event()
        singles: list[str] = []

        def other_tenant() -> None:
            n = 0
            while not stop.is_set():
                n += 1
                status, payout, _ = post(
                    f"{base}/api/v1/payouts",
                    json.dumps(
                        {"amount": "1.00", "currency": "EUR", "payee": "256772123456"}
                    ).encode(),
                    {**shop, "Content-Type": "application/json", "Idempotency-Key": f"s-{n}"},
                )
                if status == 201:
                    singles.append(payout["id"])
                stop.wait(0.5)

        thread = threading.Thread(target=other_tenant, daemon=True)
        thread.start()
        deadline = time.monotonic() + args.timeout
        batch_id = batch["id"]
        while time.monotonic() < deadline:
            left = psql(
                "SELECT count(*) FROM payments_payout WHERE batch_id = "
                f"'{batch_id}' AND submission = 'queued'",
                DB_NAME,
            ).strip()
            if left == "0":
                break
            time.sleep(1)
        stop.set()
        thread.join()
    finally:
        procs.stop_all()
    span = psql(
        "SELECT count(*), extract(epoch FROM max(submitted_at) - min(submitted_at)), "
        "extract(epoch FROM max(submitted_at) - min(created_at)) FROM payments_payout "
        f"WHERE batch_id = '{batch_id}' AND submitted_at IS NOT NULL",
        DB_NAME,
    ).strip()
    sent, first_to_last, created_to_last = span.split("|")
    busiest = psql(
        "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM payments_payout "
        f"WHERE batch_id = '{batch_id}' AND submitted_at IS NOT NULL "
        "GROUP BY date_trunc('second', submitted_at)) s",
        DB_NAME,
    ).strip()
    waits = [
        float(value)
        for value in psql(
            "SELECT extract(epoch FROM submitted_at - created_at) FROM payments_payout "
            "WHERE batch_id IS NULL AND submitted_at IS NOT NULL "
            f"AND id IN ({','.join(repr(s) for s in singles) or 'NULL'})",
            DB_NAME,
        ).split()
    ]
    print(
        f"\nMTN latency {args.mtn_latency} s, MTN_RATE_LIMIT={args.rate_limit}, "
        f"MTN_MAX_IN_FLIGHT={args.max_in_flight}, {args.workers} run_worker process(es):"
    )
    print(f"- batch items submitted: {sent} of {args.items}")
    print(
        f"- first to last submission: {float(first_to_last or 0):.1f} s "
        f"(target {args.items / args.rate_limit:.0f} s ± 10 %)"
    )
    print(f"- create to last submission: {float(created_to_last or 0):.1f} s")
    print(f"- most submissions in one second: {busiest} (limit {args.rate_limit})")
    if waits:
        waits.sort()
        print(
            f"- the other tenant's {len(waits)} payouts, create to submission: median "
            f"{statistics.median(waits) * 1000:.0f} ms, max {waits[-1] * 1000:.0f} ms "
            "(target < 250 ms)"
        )
    else:
        print("- the other tenant's payouts: none submitted")


PROGRESS_SCRIPT = """
import statistics, time, uuid
from decimal import Decimal
import django
django.setup()
from django.db import connection
from gateway.audit import Actor
from payments.models import Payout
from payments.services import transfer_create, transfer_transition
from payments.services.batches import BatchItem, BatchRequest, payout_batch_create
from tenants.models import Tenant

tenant = Tenant.objects.get(slug="bench")
count = {count}
request = BatchRequest("EUR", "progress", None, [
    BatchItem(payee="2567{{:08d}}".format(n), amount=Decimal("1.00")) for n in range(count)])
batch = payout_batch_create(tenant=tenant, actor=Actor.system(), request=request)
items = list(Payout.objects.filter(batch=batch).order_by("batch_index")[:200])
lone = [transfer_create(model=Payout, tenant=tenant, actor=Actor.system(), amount=Decimal("1.00"),
                        currency="EUR", party="256772123456") for _ in range(200)]

def timed(rows):
    seconds = []
    for row in rows:
        started = time.perf_counter()
        transfer_transition(transfer=row, target="SUCCESSFUL", actor=Actor.mtn())
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)

alone, in_batch = timed(lone), timed(items)
query = ("SELECT status, count(*), sum(amount) FROM payments_payout WHERE batch_id = %s "
         "GROUP BY status")
derived = []
with connection.cursor() as cursor:
    for _ in range(20):
        started = time.perf_counter()
        cursor.execute(query, [batch.pk])
        cursor.fetchall()
        derived.append(time.perf_counter() - started)
    cursor.execute("EXPLAIN " + query, [batch.pk])
    plan = " / ".join(row[0].strip() for row in cursor.fetchall())
read = []
from payments.selectors import payout_batch_get
for _ in range(20):
    started = time.perf_counter()
    payout_batch_get(tenant=tenant, batch_id=batch.pk)
    read.append(time.perf_counter() - started)
print(f"- an item becoming final: {{in_batch * 1000:.1f}} ms in a batch (counters kept), "
      f"{{alone * 1000:.1f}} ms alone: x{{in_batch / alone:.2f}}")
print(f"- reading a batch with its counters: {{statistics.median(read) * 1000:.2f}} ms; "
      f"deriving them from its {{count}} items (one indexed query): "
      f"{{statistics.median(derived) * 1000:.2f}} ms")
print(f"  plan: {{plan}}")
"""


def run_progress(args: argparse.Namespace) -> None:
    """What keeping the counters costs the status writer, against deriving them on reads."""
    env = environment(free_port())
    prepare(env)
    tenant(env, "bench")
    print(f"\nProgress of a {args.items}-item batch (in-process, PostgreSQL):")
    subprocess.run(
        [PYTHON, "-c", PROGRESS_SCRIPT.format(count=args.items)],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "gateway.settings"},
        check=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3, help="requests per body kind (accept)")
    parser.add_argument("--dispatch", action="store_true", help="measure sending it to MTN")
    parser.add_argument(
        "--progress", action="store_true", help="measure keeping the counters vs deriving them"
    )
    parser.add_argument("--mtn-latency", type=float, default=0.5)
    parser.add_argument("--rate-limit", type=int, default=50)
    parser.add_argument("--max-in-flight", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1, help="run_worker processes")
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    if args.dispatch:
        run_dispatch(args)
    elif args.progress:
        run_progress(args)
    else:
        run_accept(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
