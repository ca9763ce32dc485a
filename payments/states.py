"""A payment's (and a payout's) status and the table of allowed transitions. Pure."""

from __future__ import annotations

from django.db import models


class Status(models.TextChoices):
    PENDING = "PENDING"
    SUCCESSFUL = "SUCCESSFUL"
    FAILED = "FAILED"


FINAL_STATUSES = frozenset({Status.SUCCESSFUL, Status.FAILED})

ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    Status.PENDING: frozenset({Status.SUCCESSFUL, Status.FAILED}),
    Status.SUCCESSFUL: frozenset(),
    Status.FAILED: frozenset(),
}


class Submission(models.TextChoices):
    """Where the request to MTN stands; separate from the merchant-facing status."""

    QUEUED = "queued", "Queued: not yet accepted by MTN"
    SUBMITTED = "submitted", "Submitted: MTN accepted the reference"
    # An error followed an attempt that may have landed: MTN's status endpoint decides.
    CHECKING = "checking", "Checking: MTN's status endpoint decides whether it landed"
    REJECTED = "rejected", "Rejected: MTN refused the request"


def is_final(status: str) -> bool:
    return status in FINAL_STATUSES


def can_transition(current: str, target: str) -> bool:
    return target in ALLOWED_TRANSITIONS.get(current, frozenset())
