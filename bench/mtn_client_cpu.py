#!/usr/bin/env python3
"""CPU per MTN call: ``mtn.client`` (requests) against ``http.client`` on a kept-alive socket.

    .venv/bin/python bench/mtn_client_cpu.py [--calls 2000] [--rounds 3] [--profile FILE]

Starts the local MTN simulator (``manage.py mtn_sandbox``) in a process of its own, so its
work is not counted, then measures in this process, with ``time.process_time`` (user +
system CPU of this process alone), N calls of each kind made one after the other:

- ``mtn.client``: ``request_to_pay`` (POST, a new reference each) and
  ``request_to_pay_status`` (GET), through the client every caller uses (``client_for``:
  one ``requests.Session`` per account and thread), with the gateway's metrics observer
  installed, as in production;
- the baseline: the same two requests, byte for byte the same headers and body, written
  with ``http.client`` on one kept-alive connection, the answer read and the JSON decoded.

Each figure's ratio is taken to the baseline of the same run (the machine is shared, and
absolute figures from different runs do not compare). Rounds alternate the two, and the
best round of each is reported (the least disturbed by other processes). ``--profile``
writes cProfile statistics of one extra client round to FILE.
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_simulator(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(  # noqa: S603 - this interpreter, our own command
        [sys.executable, "manage.py", "mtn_sandbox", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the simulator did not start")


def cpu_per_call(calls: int, one: Callable[[int], None]) -> float:
    """Milliseconds of this process's CPU per call of ``one``."""
    started = time.process_time()
    for i in range(calls):
        one(i)
    return (time.process_time() - started) * 1000 / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls of each kind per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", help="write cProfile stats of one client round here")
    args = parser.parse_args()

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    os.environ["MTN_BASE_URL"] = base_url
    os.environ.setdefault("LOG_LEVEL", "INFO")

    import django

    django.setup()
    from mtn.client import MtnConfig, client_for

    simulator = start_simulator(port)
    try:
        client = client_for(MtnConfig.from_settings())
        token = client.get_token("collection")
        creds = client.config.credentials("collection")
        headers = {
            "Authorization": f"Bearer {token}",
            "X-Target-Environment": client.config.target_environment,
            "Ocp-Apim-Subscription-Key": creds.subscription_key,
        }
        body = {
            "amount": "100",
            "currency": "EUR",
            "externalId": "bench",
            "payer": {"partyIdType": "MSISDN", "partyId": "46733123450"},
        }
        submitted: list[uuid.UUID] = []

        def client_post(i: int) -> None:
            reference = uuid.uuid4()
            client.request_to_pay(
                reference_id=reference,
                amount=body["amount"],
                currency=body["currency"],
                external_id=body["externalId"],
                payer_msisdn=body["payer"]["partyId"],
            )
            submitted.append(reference)

        def client_get(i: int) -> None:
            client.request_to_pay_status(reference_id=submitted[i % len(submitted)])

        host = urlsplit(base_url)
        connection = http.client.HTTPConnection(host.hostname or "", host.port, timeout=10)

        def raw_post(i: int) -> None:
            reference = str(uuid.uuid4())
            connection.request(
                "POST",
                "/collection/v1_0/requesttopay",
                body=json.dumps(body).encode(),
                headers={
                    **headers,
                    "X-Reference-Id": reference,
                    "Content-Type": "application/json",
                },
            )
            response = connection.getresponse()
            response.read()
            if response.status != 202:
                raise SystemExit(f"baseline POST answered {response.status}")
            submitted.append(uuid.UUID(reference))

        def raw_get(i: int) -> None:
            reference = submitted[i % len(submitted)]
            connection.request("GET", f"/collection/v1_0/requesttopay/{reference}", headers=headers)
            response = connection.getresponse()
            answer = json.loads(response.read())
            if response.status != 200 or "status" not in answer:
                raise SystemExit(f"baseline GET answered {response.status}")

        # Warm both paths (connections, imports, the token memo) before measuring.
        for i in range(50):
            client_post(i)
            client_get(i)
            raw_post(i)
            raw_get(i)

        names = ("client POST", "client GET", "http.client POST", "http.client GET")
        results: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(args.rounds):
            results["http.client POST"].append(cpu_per_call(args.calls, raw_post))
            results["http.client GET"].append(cpu_per_call(args.calls, raw_get))
            results["client POST"].append(cpu_per_call(args.calls, client_post))
            results["client GET"].append(cpu_per_call(args.calls, client_get))

        if args.profile:
            # CPU time, not wall time: a call waiting on the socket costs nothing.
            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
            for i in range(args.calls):
                client_post(i)
                client_get(i)
            profiler.disable()
            profiler.dump_stats(args.profile)
    finally:
        simulator.terminate()
        simulator.wait(timeout=10)

    best = {name: min(values) for name, values in results.items()}
    print(f"{args.calls} calls of each kind, {args.rounds} rounds, best round (CPU ms per call)")
    print(f"{'path':<20} {'ms/call':>8} {'x baseline':>10}   rounds")
    for kind in ("POST", "GET"):
        baseline = best[f"http.client {kind}"]
        for name in (f"http.client {kind}", f"client {kind}"):
            rounds = " ".join(f"{value:.3f}" for value in results[name])
            print(f"{name:<20} {best[name]:>8.3f} {best[name] / baseline:>10.2f}   {rounds}")
    both_client = best["client POST"] + best["client GET"]
    both_raw = best["http.client POST"] + best["http.client GET"]
    print(
        f"{'client, mean':<20} {both_client / 2:>8.3f} {both_client / both_raw:>10.2f}   "
        f"(http.client mean {both_raw / 2:.3f})"
    )


if __name__ == "__main__":
    main()
