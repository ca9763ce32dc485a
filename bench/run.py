#!/usr/bin/env python3
"""`make bench`: the gateway's cost against the machine's limit, measured in one run.

Starts, on this machine and over loopback only: a fresh PostgreSQL database, the MTN
simulator (answering instantly), gunicorn with the production settings (sync workers), and
wrk as the load generator. Measures every scenario at 1 and at 32 concurrent clients, plus
two baselines on the same server and database (a constant endpoint and a bare DRF
validate-and-insert), and prints each figure's ratio to its baseline. Then it creates ten
thousand payments with the worker running and reports each process's resident memory, and
with ``--scale`` repeats the reads over a table of one million payments and prints the
query plans of the worker's due-work queries.

Every number is relative to a baseline measured in the same run: the machines are shared
and noisy, so absolute figures from different runs do not compare.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv" / "bin"
PYTHON = str(VENV / "python")
WRK_DIR = Path(__file__).resolve().parent / "wrk"
LOG_DIR = ROOT / "var" / "bench"
DB_NAME = "momo_bench"
PG = {"host": "127.0.0.1", "port": "5432", "user": "postgres"}
WEBHOOK_SECRET = "bench-mtn-webhook-secret"  # noqa: S105 - a local benchmark's throwaway


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def psql(sql: str, db: str = "postgres") -> str:
    out = subprocess.run(
        [
            "psql",
            "-h",
            PG["host"],
            "-p",
            PG["port"],
            "-U",
            PG["user"],
            "-d",
            db,
            "-qAtX",
            "-c",
            sql,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - loopback only
                return
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def http_json(method: str, url: str, body: dict | None = None, headers: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback only
        return json.loads(response.read() or b"{}")


def rss_kb(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) of a process, in kB."""
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":", 1)
                values[key] = int(value.split()[0])
    return values.get("VmRSS", 0), values.get("VmHWM", 0)


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


@dataclass
class Processes:
    procs: list[subprocess.Popen] = field(default_factory=list)

    def start(self, args: list[str], env: dict[str, str], log: str) -> subprocess.Popen:
        handle = open(log, "w")  # noqa: SIM115 - lives as long as the process
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_ticks(pid: int) -> tuple[int, int]:
    """(utime + stime, cutime + cstime) of a process, in clock ticks, from /proc/PID/stat."""
    text = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces: the fields that follow come after its ")".
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return utime + stime, cutime + cstime


def server_cpu_seconds(master_pid: int) -> float:
    """CPU time gunicorn has used so far: the master, its live workers and its reaped ones.

    A worker that exits and is reaped adds its time to the master's cutime/cstime, so a
    worker replaced during a scenario is still counted (and never twice: a live worker's
    time is not in its parent's cutime until it is reaped).
    """
    own, reaped = _stat_ticks(master_pid)
    live = 0
    for pid in children(master_pid):
        with contextlib.suppress(OSError, ValueError):
            live += _stat_ticks(pid)[0]
    return (own + reaped + live) / CLOCK_TICKS


@dataclass
class Result:
    scenario: str
    clients: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int = 0
    cpu_ms_per_request: float = 0.0


def run_wrk(
    base_url: str,
    *,
    scenario: dict,
    clients: int,
    seconds: float,
    run_id: str,
    master_pid: int | None = None,
) -> Result:
    """One wrk run; with ``master_pid``, also gunicorn's CPU time per request served."""
    env = {
        **os.environ,
        "BENCH_DIR": str(WRK_DIR),
        "BENCH_METHOD": scenario["method"],
        "BENCH_PATH": scenario["path"],
        "BENCH_BODY": scenario.get("body", ""),
        "BENCH_HEADERS": ";".join(f"{k}={v}" for k, v in scenario.get("headers", {}).items()),
        "BENCH_UNIQUE_KEY": "1" if scenario.get("unique_key") else "0",
        "BENCH_RUN": run_id,
    }
    threads = 1 if clients == 1 else 2
    cpu_before = server_cpu_seconds(master_pid) if master_pid else 0.0
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{clients}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(WRK_DIR / "scenario.lua"),
            base_url,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    # wrk has closed its connections: every request it counted has been answered.
    cpu_after = server_cpu_seconds(master_pid) if master_pid else 0.0
    line = next(x for x in out.stdout.splitlines() if x.startswith("WRK_JSON "))
    data = json.loads(line[len("WRK_JSON ") :])
    requests = int(data["requests"])
    return Result(
        scenario=scenario["name"],
        clients=clients,
        rps=requests / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=data["socket_errors"] + data["non2xx"],
        requests=requests,
        cpu_ms_per_request=(cpu_after - cpu_before) * 1000 / requests if requests else 0.0,
    )


def machine_description() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    pg = psql("SHOW server_version").strip()
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem_gb:.0f} GiB, {platform.platform()}, "
        f"Python {platform.python_version()}, PostgreSQL {pg}"
    )


def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    print("installing wrk (Debian package)...", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=False)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "-o", "DPkg::Lock::Timeout=300", "wrk"], check=True
    )


def main() -> int:  # noqa: PLR0915 - a linear script reads best top to bottom
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="per scenario and level")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4, help="per web worker (production: 4)")
    parser.add_argument("--payments", type=int, default=10_000, help="for the memory run")
    parser.add_argument("--scale", action="store_true", help="also run over 1M payments")
    parser.add_argument("--scale-rows", type=int, default=1_000_000)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--only", help="comma-separated scenario names")
    parser.add_argument(
        "--clients", default="1,32", help="comma-separated concurrency levels (default 1,32)"
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the memory run")
    parser.add_argument(
        "--profile",
        type=Path,
        help="instead of measuring, sample each scenario's web workers with py-spy at 1 "
        "client and write collapsed stacks here (bench/profile_summary.py reads them)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        help="the application's LOG_LEVEL (INFO, the production default, writes the JSON "
        "access log of every request to var/bench/gunicorn.log)",
    )
    args = parser.parse_args()

    ensure_wrk()
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine_description()}", flush=True)
    psql(f"DROP DATABASE IF EXISTS {DB_NAME}")
    psql(f"CREATE DATABASE {DB_NAME}")
    sim_port, web_port = free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{PG['user']}@{PG['host']}:{PG['port']}/{DB_NAME}",
        "REDIS_URL": "redis://127.0.0.1:6379/14",
        "DEBUG": "false",
        "SECRET_KEY": "bench-" + uuid.uuid4().hex * 2,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "BENCH_ENDPOINTS": "true",
        "RATE_LIMIT_DEFAULT": "100000000/s",
        "CALLBACK_RATE_LIMIT": "100000000/s",
        "MTN_BASE_URL": f"http://127.0.0.1:{sim_port}",
        "MTN_WEBHOOK_SECRET": WEBHOOK_SECRET,
        # DEBUG is off: the settings refuse the simulator's default credentials and the dev
        # encryption key, so the gateway and its simulator share these throwaways instead.
        **{
            f"MTN_{product}_{name}": str(uuid.uuid4()) if name == "API_USER" else uuid.uuid4().hex
            for product in ("COLLECTION", "DISBURSEMENT")
            for name in ("SUBSCRIPTION_KEY", "API_USER", "API_KEY")
        },
        "FIELD_ENCRYPTION_KEYS": "YmVuY2gtb25seS1ub3QtYS1zZWNyZXQtMzItYnl0ZXM=",
        "MTN_STATUS_POLL_AFTER_SECONDS": "3600",
        "DB_CONN_MAX_AGE": "600",
        "LOG_LEVEL": args.log_level,
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("MTN_CALLBACK_URL", None)
    subprocess.run(["redis-cli", "-n", "14", "FLUSHDB"], check=False, capture_output=True)
    subprocess.run([PYTHON, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    created = subprocess.run(
        [PYTHON, "manage.py", "create_tenant", "bench", "--name", "Bench"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    api_key = json.loads(created.stdout)["api_key"]
    fund_tenant(env)

    procs = Processes()
    try:
        procs.start(
            [PYTHON, "manage.py", "mtn_sandbox", "--port", str(sim_port), "--delay-seconds", "0"],
            env,
            str(LOG_DIR / "simulator.log"),
        )
        master = procs.start(
            [
                str(VENV / "gunicorn"),
                "gateway.wsgi",
                "--workers",
                str(args.web_workers),
                # gunicorn.conf.py (read from the working directory) makes these gthread
                # workers, as in production; --threads 1 gives plain sync workers.
                "--threads",
                str(args.threads),
                "--bind",
                f"127.0.0.1:{web_port}",
                "--log-level",
                "warning",
            ],
            env,
            str(LOG_DIR / "gunicorn.log"),
        )
        base = f"http://127.0.0.1:{web_port}"
        wait_http(f"{base}/healthz")
        wait_http(f"http://127.0.0.1:{sim_port}/_simulator/faults")

        auth = {"X-API-Key": api_key, "X-Tenant-ID": "bench", "Content-Type": "application/json"}
        body = json.dumps({"amount": "15.00", "currency": "EUR", "payer": "256772123456"})
        first = http_json(
            "POST", f"{base}/api/v1/payments", json.loads(body), {**auth, "Idempotency-Key": "seed"}
        )
        for i in range(60):  # a first page worth listing
            http_json(
                "POST",
                f"{base}/api/v1/payments",
                {"amount": 10 + i, "currency": "EUR", "payer": "256772123456"},
                {**auth, "Idempotency-Key": f"seed-{i}"},
            )
        payout_body = json.dumps({"amount": "1.00", "currency": "EUR", "payee": "256772123456"})
        callback_body = json.dumps(
            {
                "externalId": first["id"],
                "amount": "15",
                "currency": "EUR",
                "financialTransactionId": "12345",
                "payer": {"partyIdType": "MSISDN", "partyId": "256772123456"},
                "status": "SUCCESSFUL",
            }
        )
        signature = hmac.new(
            WEBHOOK_SECRET.encode(), callback_body.encode(), hashlib.sha256
        ).hexdigest()
        callback_headers = {"Content-Type": "application/json", "X-Signature-256": signature}
        # The first callback is confirmed with MTN and applied; the measured ones are the
        # repeats MTN sends (duplicates of a final payment), the common case on the door.
        http_json(
            "POST", f"{base}/api/v1/webhooks/mtn", json.loads(callback_body), callback_headers
        )

        scenarios = [
            {"name": "baseline: constant", "method": "GET", "path": "/bench/constant"},
            {
                "name": "baseline: insert",
                "method": "POST",
                "path": "/bench/insert",
                "body": json.dumps({"name": "row", "amount": "15.00"}),
                "headers": {"Content-Type": "application/json"},
            },
            {
                "name": "create payment",
                "method": "POST",
                "path": "/api/v1/payments",
                "body": body,
                "headers": auth,
                "unique_key": True,
            },
            {
                "name": "idempotent replay",
                "method": "POST",
                "path": "/api/v1/payments",
                "body": body,
                "headers": {**auth, "Idempotency-Key": "seed"},
            },
            {
                "name": "retrieve",
                "method": "GET",
                "path": f"/api/v1/payments/{first['id']}",
                "headers": auth,
            },
            {"name": "list (50)", "method": "GET", "path": "/api/v1/payments", "headers": auth},
            {
                "name": "create payout",
                "method": "POST",
                "path": "/api/v1/payouts",
                "body": payout_body,
                "headers": auth,
                "unique_key": True,
            },
            {
                "name": "signed callback",
                "method": "POST",
                "path": "/api/v1/webhooks/mtn",
                "body": callback_body,
                "headers": callback_headers,
            },
        ]
        if args.only:
            wanted = {name.strip() for name in args.only.split(",")}
            scenarios = [
                s for s in scenarios if s["name"] in wanted or s["name"].startswith("baseline")
            ]

        results: list[Result] = []
        run_id = uuid.uuid4().hex[:8]
        if args.profile:
            profile_scenarios(
                base,
                scenarios=scenarios,
                master_pid=master.pid,
                out=args.profile,
                seconds=args.seconds,
                run_id=run_id,
            )
            return 0
        levels = [int(x) for x in args.clients.split(",")]
        for clients in levels:
            for index, scenario in enumerate(scenarios):
                # Each wrk run its own idempotency keys: a create must not replay a key an
                # earlier level sent.
                result = run_wrk(
                    base,
                    scenario=scenario,
                    clients=clients,
                    seconds=args.seconds,
                    run_id=f"{run_id}c{clients}s{index}",
                    master_pid=master.pid,
                )
                results.append(result)
                print(
                    f"  {scenario['name']:<20} c={clients:<3} {result.rps:8.0f} req/s  "
                    f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  "
                    f"cpu {result.cpu_ms_per_request:5.2f} ms/req  errors {result.errors}",
                    flush=True,
                )

        table = format_table(results)
        print(table, flush=True)

        memory = {"table": "", "figures": {}}
        if not args.no_memory:
            memory = measure_memory(
                base=base,
                master_pid=master.pid,
                env=env,
                procs=procs,
                auth=auth,
                body=body,
                payments=args.payments,
                run_id=run_id,
            )
            print(memory["table"], flush=True)

        scale = None
        if args.scale:
            scale = measure_scale(
                base=base, auth=auth, rows=args.scale_rows, first_id=first["id"], run_id=run_id
            )
            print(scale["table"], flush=True)
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "machine": machine_description(),
                        "results": [r.__dict__ for r in results],
                        "memory": memory["figures"],
                        "scale": scale["figures"] if scale else None,
                    },
                    indent=2,
                )
            )
    finally:
        procs.stop_all()
    return 0


def format_table(results: list[Result]) -> str:
    """Throughput, latency and server CPU per request, each beside its baselines' ratios."""
    lines = [
        "",
        "| scenario | clients | req/s | p50 ms | p99 ms | CPU ms/req | CPU × insert "
        "| req/s × insert | req/s × constant |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for clients in sorted({r.clients for r in results}):
        rows = [r for r in results if r.clients == clients]
        insert = next((r for r in rows if r.scenario == "baseline: insert"), None)
        constant = next((r for r in rows if r.scenario == "baseline: constant"), None)
        for r in rows:
            ratio_insert = f"{r.rps / insert.rps:.2f}" if insert else "-"
            ratio_constant = f"{r.rps / constant.rps:.2f}" if constant else "-"
            cpu_ratio = (
                f"{r.cpu_ms_per_request / insert.cpu_ms_per_request:.2f}"
                if insert and insert.cpu_ms_per_request
                else "-"
            )
            lines.append(
                f"| {r.scenario} | {clients} | {r.rps:.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | "
                f"{r.cpu_ms_per_request:.2f} | {cpu_ratio} | {ratio_insert} | {ratio_constant} |"
            )
    single = {r.scenario: r for r in results if r.clients == 1}
    if "create payment" in single and "baseline: insert" in single:
        added = single["create payment"].p50_ms - single["baseline: insert"].p50_ms
        lines.append("")
        lines.append(
            f"Added latency of a create at 1 client (p50 create − p50 insert baseline, "
            f"including the simulated MTN call): {added:.2f} ms"
        )
    errors = sum(r.errors for r in results)
    lines.append(f"Errors (socket + non-2xx) over all scenarios: {errors}")
    return "\n".join(lines)


def profile_scenarios(
    base: str, *, scenarios: list[dict], master_pid: int, out: Path, seconds: float, run_id: str
) -> None:
    """py-spy on every web worker while wrk drives one scenario at 1 client."""
    py_spy = shutil.which("py-spy") or shutil.which("py-spy", path=os.environ.get("PY_SPY_PATH"))
    if not py_spy:
        raise SystemExit("--profile needs py-spy on PATH (pip install py-spy, in any venv)")
    out.mkdir(parents=True, exist_ok=True)
    for index, scenario in enumerate(scenarios):
        slug = "".join(c if c.isalnum() else "-" for c in scenario["name"]).strip("-")
        samplers = [
            subprocess.Popen(  # noqa: S603
                [
                    py_spy,
                    "record",
                    "--pid",
                    str(pid),
                    "--rate",
                    "200",
                    "--format",
                    "raw",
                    "--duration",
                    str(round(seconds) + 1),
                    "--output",
                    str(out / f"{slug}-{pid}.txt"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for pid in children(master_pid)
        ]
        time.sleep(0.5)  # py-spy attached before the load starts
        result = run_wrk(
            base,
            scenario=scenario,
            clients=1,
            seconds=seconds,
            run_id=f"{run_id}p{index}",
            master_pid=master_pid,
        )
        for sampler in samplers:
            sampler.wait(timeout=seconds + 30)
        print(
            f"  profiled {scenario['name']:<20} {result.requests} requests, "
            f"cpu {result.cpu_ms_per_request:5.2f} ms/req",
            flush=True,
        )


def fund_tenant(env: dict[str, str]) -> None:
    """Give the bench tenant money for its payouts, where the gateway keeps balances.

    ``manage.py balance_adjust`` exists once balances do; without it payouts need no funds.
    """
    if not list(ROOT.glob("*/management/commands/balance_adjust.py")):
        return
    subprocess.run(
        [PYTHON, "manage.py", "balance_adjust", "bench", "EUR", "100000000", "--reason", "bench"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )


def measure_memory(
    *,
    base: str,
    master_pid: int,
    env: dict[str, str],
    procs: Processes,
    auth: dict,
    body: str,
    payments: int,
    run_id: str,
) -> dict:
    """Create ``payments`` payments with the worker polling them; sample every process's RSS."""
    worker_env = {**env, "MTN_STATUS_POLL_AFTER_SECONDS": "1"}
    worker = procs.start(
        [PYTHON, "manage.py", "run_worker"], worker_env, str(LOG_DIR / "worker.log")
    )
    web_pids = children(master_pid)
    samples: dict[str, list[int]] = {f"web worker {pid}": [] for pid in web_pids}
    samples[f"run_worker {worker.pid}"] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            for name in samples:
                pid = int(name.rsplit(" ", 1)[1])
                with contextlib.suppress(OSError):
                    samples[name].append(rss_kb(pid)[0])
            stop.wait(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    scenario = {
        "name": "create payment",
        "method": "POST",
        "path": "/api/v1/payments",
        "body": body,
        "headers": auth,
        "unique_key": True,
    }
    created = 0
    rounds = 0
    while created < payments and rounds < 50:
        result = run_wrk(base, scenario=scenario, clients=8, seconds=4, run_id=f"{run_id}m{rounds}")
        created += int(result.rps * 4)
        rounds += 1
    time.sleep(3)  # let the worker catch up with polls
    stop.set()
    sampler.join()
    lines = [
        "",
        f"Memory over {created} payments created with the worker running (resident set, MB):",
        "| process | after warm-up | at the end | peak | growth after warm-up |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    figures = {}
    for name, values in samples.items():
        if len(values) < 4:
            continue
        warm = statistics.median(values[len(values) // 5 : len(values) // 5 + 3]) / 1024
        end = statistics.median(values[-3:]) / 1024
        peak = max(values) / 1024
        figures[name] = {"warm_mb": warm, "end_mb": end, "peak_mb": peak}
        lines.append(f"| {name} | {warm:.1f} | {end:.1f} | {peak:.1f} | {end - warm:+.1f} |")
    return {"table": "\n".join(lines), "figures": figures, "created": created}


def measure_scale(*, base: str, auth: dict, rows: int, first_id: str, run_id: str) -> dict:
    """Retrieve and list over a small table, then over ``rows`` payments; query plans."""
    read_scenarios = [
        {
            "name": "retrieve",
            "method": "GET",
            "path": f"/api/v1/payments/{first_id}",
            "headers": auth,
        },
        {"name": "list (50)", "method": "GET", "path": "/api/v1/payments", "headers": auth},
    ]
    small = [run_wrk(base, scenario=s, clients=1, seconds=5, run_id=run_id) for s in read_scenarios]
    tenant_id = psql("SELECT id FROM tenants_tenant WHERE slug = 'bench'", DB_NAME).strip()
    started = time.monotonic()
    # Bulk rows spread over the last 30 days, other tenants' and this tenant's, mostly final.
    psql(
        f"""
        INSERT INTO payments_payment (
            id, tenant_id, status, amount, currency, reference, description, metadata,
            failure_code, failure_message, mtn_reference_id, mtn_financial_transaction_id,
            callback_token, submission, submit_attempts, poll_attempts, next_attempt_at,
            last_error, needs_review, submitted_at, finalized_at, created_at, updated_at, payer)
        SELECT gen_random_uuid(), '{tenant_id}',
               CASE WHEN g % 50 = 0 THEN 'PENDING' WHEN g % 7 = 0 THEN 'FAILED'
                    ELSE 'SUCCESSFUL' END,
               (g % 100000) + 1, 'EUR', 'ref-' || g, NULL, '{{}}'::jsonb, '', '',
               gen_random_uuid(), '', md5(g::text || random()::text), 'submitted', 1, 0,
               CASE WHEN g % 50 = 0 THEN now() + interval '1 hour' ELSE NULL END,
               '', false, now(), now(),
               now() - (g || ' seconds')::interval * 2.5, now(), '256772123456'
        FROM generate_series(1, {rows}) AS g;
        ANALYZE payments_payment;
        """,
        DB_NAME,
    )
    load_seconds = time.monotonic() - started
    large = [run_wrk(base, scenario=s, clients=1, seconds=5, run_id=run_id) for s in read_scenarios]
    lines = [
        "",
        f"Scale: {rows} payments bulk-inserted in {load_seconds:.0f} s; 1 client:",
        "| read | small table p50 ms | 1M table p50 ms | ratio | small req/s | 1M req/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    figures = {}
    for s, big in zip(small, large, strict=True):
        ratio = big.p50_ms / s.p50_ms
        figures[s.scenario] = {"small_p50": s.p50_ms, "large_p50": big.p50_ms, "ratio": ratio}
        lines.append(
            f"| {s.scenario} | {s.p50_ms:.2f} | {big.p50_ms:.2f} | {ratio:.2f} | "
            f"{s.rps:.0f} | {big.rps:.0f} |"
        )
    plans = {
        "due payments (worker claim)": (
            "SELECT id FROM payments_payment WHERE next_attempt_at <= now() "
            "ORDER BY next_attempt_at LIMIT 20 FOR UPDATE SKIP LOCKED"
        ),
        "due webhook deliveries": (
            "SELECT id FROM webhooks_merchantdelivery WHERE next_attempt_at <= now() "
            "ORDER BY next_attempt_at LIMIT 20 FOR UPDATE SKIP LOCKED"
        ),
        "due callbacks": (
            "SELECT id FROM webhooks_mtncallback WHERE next_attempt_at <= now() "
            "ORDER BY next_attempt_at LIMIT 20 FOR UPDATE SKIP LOCKED"
        ),
        "list, first page": (
            f"SELECT * FROM payments_payment WHERE tenant_id = '{tenant_id}' "
            "ORDER BY created_at DESC, id DESC LIMIT 51"
        ),
    }
    lines.append("")
    for title, sql in plans.items():
        plan = psql(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {sql}", DB_NAME)
        lines.append(f"Plan, {title}:\n```\n{plan.strip()}\n```")
    return {"table": "\n".join(lines), "figures": figures}


if __name__ == "__main__":
    sys.exit(main())
