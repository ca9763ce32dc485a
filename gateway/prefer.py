"""The ``Prefer`` request header (RFC 7240): the one preference the API honours is ``wait``.

``Prefer: wait=N`` asks a create to wait up to N seconds for MTN's first answer (the
contract's Payments section). A malformed or unknown preference is ignored, as RFC 7240
says; N is capped at ``MAX_WAIT_SECONDS``.
"""

from __future__ import annotations

from typing import Any

MAX_WAIT_SECONDS = 10
APPLIED_HEADER = "Preference-Applied"


def preferred_wait(headers: Any) -> int | None:
    """Seconds from ``Prefer: wait=N`` (1 to 10, larger capped), or None when not asked."""
    raw = headers.get("Prefer")
    if not raw:
        return None
    wait: int | None = None
    for preference in raw.split(","):
        token = preference.split(";", 1)[0].strip()
        name, _, value = token.partition("=")
        if name.strip().lower() != "wait":
            continue
        value = value.strip().strip('"')
        if not value.isascii() or not value.isdigit():
            return None
        wait = min(int(value), MAX_WAIT_SECONDS)
    return wait or None


def applied_wait_header(seconds: int) -> dict[str, str]:
    return {APPLIED_HEADER: f"wait={seconds}"}
