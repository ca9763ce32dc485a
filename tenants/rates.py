"""Rate strings such as ``120/m``, as django-ratelimit reads them."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

_RATE_RE = re.compile(r"^(\d+)/(\d*)([smhd])$")


def validate_rate(value: str) -> None:
    if value and not _RATE_RE.match(value):
        raise ValidationError(f"{value!r} is not a rate like 120/m, 10/s or 5000/h.")
