"""The worker's daily reconciliation: looked at every few minutes, run by reconcile_daily."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shell import worker as worker_module
from shell.worker import Worker


def test_the_worker_asks_for_the_daily_run_every_few_minutes(monkeypatch):
    asked: list[datetime] = []
    monkeypatch.setattr(worker_module, "reconcile_daily", lambda *, now: asked.append(now))
    worker = Worker()
    start = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)

    for minutes in (0, 1, 4, 5, 6, 11):
        worker._reconcile_if_due(start + timedelta(minutes=minutes))

    assert asked == [start, start + timedelta(minutes=5), start + timedelta(minutes=11)]
