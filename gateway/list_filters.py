"""Query-string filters every list endpoint shares: ``created_after``/``created_before`` and
``limit``. One reading of them, so payments, payouts, refunds and the balance statement
accept and refuse exactly the same text."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

TIME_RANGE_PARAMETERS = ("created_after", "created_before")


def parse_timestamp(raw: str) -> datetime | None:
    """ISO 8601 with or without an offset (none = UTC), as an aware UTC datetime, or None."""
    # A "+" in a query string arrives as a space: "...T12:00:00 02:00" means "+02:00".
    text = raw.replace(" ", "+") if raw.count(" ") == 1 else raw
    try:
        moment = parse_datetime(text)
    except ValueError:
        return None
    if moment is None:
        return None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, UTC)
    return as_utc(moment)


def as_utc(moment: datetime) -> datetime | None:
    """The instant in UTC, or None when it lies outside what a datetime can hold.

    ``0001-01-01T00:00:00+14:00`` parses, but is before year 1 in UTC: the query would
    raise ``OverflowError`` (a 500) instead of the 400 a malformed filter deserves.
    """
    try:
        return moment.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def read_time_range(
    params: Mapping[str, str], *, errors: dict[str, list[str]], values: dict[str, Any]
) -> None:
    """Put each given ``created_after``/``created_before`` in ``values``; note bad ones."""
    for name in TIME_RANGE_PARAMETERS:
        raw = params.get(name)
        if raw is None:
            continue
        moment = parse_timestamp(raw)
        if moment is None:
            errors[name] = ["Must be an ISO 8601 timestamp, e.g. 2026-01-31T12:00:00Z."]
        values[name] = moment


def read_limit(
    params: Mapping[str, str],
    *,
    maximum: int,
    errors: dict[str, list[str]],
    values: dict[str, Any],
) -> None:
    """Put a given ``limit`` (1 to ``maximum``) in ``values``; note a bad one."""
    raw_limit = params.get("limit")
    if raw_limit is None:
        return
    if (
        not raw_limit.isascii()
        or not raw_limit.isdigit()
        or len(raw_limit) > 10  # int() refuses over 4300 digits with a ValueError (a 500)
        or not (1 <= int(raw_limit) <= maximum)
    ):
        errors["limit"] = [f"Must be a whole number from 1 to {maximum}."]
    else:
        values["limit"] = int(raw_limit)
