"""Database helpers shared by the apps."""

from __future__ import annotations

from django.db import connection


def commit_without_waiting_for_disk() -> None:
    """Let the current transaction commit without waiting for its WAL to reach the disk.

    Only for transactions whose loss in a crash the system recovers from by itself (the
    caller's docstring must say how). PostgreSQL keeps such a commit atomic and ordered; a
    crash can only forget the last few hundred milliseconds of them. Elsewhere a no-op.
    """
    if connection.vendor == "postgresql" and connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
