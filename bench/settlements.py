"""Settlements per second with 32 tenants settling at once, on PostgreSQL.

Each of ``--threads`` threads owns one tenant and settles that tenant's pending payments one
after another through the status writer (``transfer_transition`` to SUCCESSFUL: what a
confirmed callback or a poll does), so every settlement credits its tenant and posts to the
platform's accounts of the currency. Different tenants share nothing but those platform
accounts: how fast they settle together is how much those accounts serialise them.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/momo_bench \
        .venv/bin/python bench/settlements.py --threads 32 --per-thread 40

The database is migrated first; tenants and payments are created fresh (slugs unique per
run), so the script can run again on the same database.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--per-thread", type=int, default=40)
    parser.add_argument("--currency", default="UGX")
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, connections

    if connection.vendor != "postgresql":
        print("bench/settlements.py measures PostgreSQL: set DATABASE_URL", file=sys.stderr)
        return 2
    call_command("migrate", verbosity=0)

    from gateway.audit import Actor
    from ledger.selectors import ledger_verify
    from payments.models import Payment
    from payments.services import transfer_transition
    from payments.states import Status, Submission
    from tenants.models import Tenant

    run = uuid.uuid4().hex[:8]
    tenants = [
        Tenant.objects.create(
            slug=f"bench-{run}-{n}", name=f"bench {n}", collection_fee_percent=Decimal("1.5")
        )
        for n in range(args.threads)
    ]
    fields = {f.name for f in Payment._meta.get_fields()}
    extra = {}
    if "collection_fee_percent" in fields:
        extra["collection_fee_percent"] = Decimal("1.5")
    payments = {
        tenant.pk: Payment.objects.bulk_create(
            [
                Payment(
                    tenant=tenant,
                    amount=Decimal(1000 + i),
                    currency=args.currency,
                    payer="256772000001",
                    submission=Submission.SUBMITTED,
                    **extra,
                )
                for i in range(args.per_thread)
            ]
        )
        for tenant in tenants
    }
    # One settlement first, so that the platform's accounts exist before the clock starts.
    warm = Payment.objects.create(
        tenant=tenants[0], amount=Decimal(1), currency=args.currency, payer="256772000001", **extra
    )
    transfer_transition(transfer=warm, target=Status.SUCCESSFUL, actor=Actor.mtn())
    connection.close()

    barrier = threading.Barrier(args.threads + 1)
    errors: list[BaseException] = []

    def settle(tenant_id: uuid.UUID) -> None:
        try:
            barrier.wait()
            for payment in payments[tenant_id]:
                transfer_transition(transfer=payment, target=Status.SUCCESSFUL, actor=Actor.mtn())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=settle, args=(t.pk,)) for t in tenants]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        print(f"errors: {errors[:3]}", file=sys.stderr)
        return 1
    total = args.threads * args.per_thread
    problems = ledger_verify()
    print(
        f"{total} settlements, {args.threads} tenants at once: {elapsed:.2f} s, "
        f"{total / elapsed:.1f} settlements/s; ledger_verify problems: {len(problems)}"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
