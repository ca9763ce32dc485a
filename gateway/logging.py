"""Structured logs: one JSON object per line, with payer numbers masked and secrets redacted.

``settings.LOGGING`` wires these in for every process (gunicorn's workers, ``run_worker``,
``manage.py``); ``gunicorn.conf.py`` uses them for gunicorn's own lines. A line looks like::

    {"time": "2026-11-27T09:27:35.355Z", "level": "INFO", "logger": "payments.services",
     "message": "payment created: 15.00 EUR, payer *********456", "request_id": "9f0c...",
     "tenant": "alice", "payment_id": "5f0c...", "event": "payment.created"}

``RedactingFilter`` sits on the handlers (not on loggers), so that it also sees what other
libraries log and what propagates from child loggers such as ``django.request``.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gateway.request_context import (
    current_payment_id,
    current_tenant,
    get_payment_id,
    get_request_id,
    get_tenant,
)

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse

REDACTED = "[redacted]"

# MSISDN-like digit runs (9 to 15 digits, an optional leading "+") that stand alone: not part
# of a word, a UUID (hex and dashes) or a decimal number. The last 3 digits stay readable.
_MSISDN = re.compile(r"(?<![\w.\-])(\+?)(\d{6,12})(\d{3})(?![\w\-]|\.\d)")

# Secrets, in the order they are applied. Our API keys are "mgw_" + 43 url-safe characters,
# webhook secrets "whsec_" + base64 (tenants/keys.py). Callback URLs carry an unguessable
# per-payment token that is as good as a password for that payment.
_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bmgw_[A-Za-z0-9_\-]{20,}"), f"mgw_{REDACTED}"),
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=_\-]{8,}"), f"whsec_{REDACTED}"),
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=\-]{6,}", re.IGNORECASE), rf"\1 {REDACTED}"),
    (
        re.compile(
            r"""\b([\w\-]*(?:authorization|api[_\-]?key|subscription[_\-]?key|secret|password|"""
            r"""passwd|token)["']?\s*[:=]\s*["']?)"""
            r"""(?!(?:(?:Bearer|Basic)\s+)?[\w\-]*\[redacted\])(?:(?:Bearer|Basic)\s+)?[^\s"',;}\]]+""",
            re.IGNORECASE,
        ),
        rf"\1{REDACTED}",
    ),
    (re.compile(r"(/webhooks/mtn/)(?!health\b)[A-Za-z0-9_\-]{16,}"), rf"\1{REDACTED}"),
)

# Whatever any pattern above could change holds one of these words (in any case), and an
# MSISDN nine digits in a row. Most log text (paths, ids, status words, amounts) holds
# neither, and is left as it is after a few substring checks: the patterns themselves cost
# far more (the keyword one backtracks over every run of word characters, such as a UUID),
# and every line of the access log goes through them.
_TRIGGER_WORDS = (
    "mgw_",
    "whsec_",
    "bearer",
    "basic",
    "authorization",
    "apikey",
    "api_key",
    "api-key",
    "subscription",
    "secret",
    "passw",
    "token",
    "/webhooks/mtn/",
)
_NINE_DIGITS = re.compile(r"\d{9}")


def _has_trigger_word(text: str) -> bool:
    lowered = text.lower()
    return any(word in lowered for word in _TRIGGER_WORDS)


# Keys of extras and of dicts inside them whose values are never logged as they are.
_SECRET_KEYS = re.compile(
    r"authorization|api[_\-]?key|secret|password|passwd|token|subscription[_\-]?key|signature",
    re.IGNORECASE,
)

# Settings whose values must never appear, wherever they turn up (an exception text, a URL).
_SECRET_SETTINGS = (
    "SECRET_KEY",
    "MTN_COLLECTION_API_KEY",
    "MTN_COLLECTION_SUBSCRIPTION_KEY",
    "MTN_DISBURSEMENT_API_KEY",
    "MTN_DISBURSEMENT_SUBSCRIPTION_KEY",
    "MTN_WEBHOOK_SECRET",
    "METRICS_TOKEN",
)

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", logging.INFO, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "_redacted",
}


@functools.lru_cache(maxsize=1024)
def _is_secret_key(key: str) -> bool:
    # Log lines use a small, fixed set of extra names: remember the answer for each.
    return _SECRET_KEYS.search(key) is not None


def mask_msisdn(text: str) -> str:
    """``256772123456`` → ``*********456`` (a leading ``+`` is kept)."""
    return _MSISDN.sub(lambda m: f"{m.group(1)}{'*' * len(m.group(2))}{m.group(3)}", text)


# The configured secrets, read once per settings object: redact() runs for every string of
# every log line. Django's setting_changed signal (override_settings, tests) empties it.
_secrets: list[str] | None = None


def _configured_secrets() -> list[str]:
    global _secrets  # noqa: PLW0603 - a per-process memo, reset by _forget_secrets
    if _secrets is not None:
        return _secrets
    # Imported here: gunicorn's master formats its own lines before Django is set up.
    from django.conf import settings

    if not settings.configured:
        return []
    values = []
    for name in _SECRET_SETTINGS:
        value = getattr(settings, name, "")
        if isinstance(value, str) and len(value) >= 8:
            values.append(value)
    _forget_secrets_on_change()
    _secrets = values
    return values


def _forget_secrets(**kwargs: Any) -> None:
    global _secrets  # noqa: PLW0603
    _secrets = None


def _forget_secrets_on_change() -> None:
    from django.core.signals import setting_changed

    setting_changed.connect(_forget_secrets, dispatch_uid="gateway.logging.secrets")


def redact(text: str) -> str:
    """Mask payer numbers and redact secrets in one piece of text."""
    if not text:
        return text
    for secret in _configured_secrets():
        if secret in text:
            text = text.replace(secret, REDACTED)
    if _has_trigger_word(text):
        for pattern, replacement in _SECRET_PATTERNS:
            text = pattern.sub(replacement, text)
    if _NINE_DIGITS.search(text):  # an MSISDN is at least nine digits in a row
        text = mask_msisdn(text)
    return text


def redact_value(value: Any, key: str = "") -> Any:
    """``redact`` applied through dicts, lists and tuples; secret-named keys lose their value."""
    if isinstance(value, bool) or value is None:
        return value
    if key and _is_secret_key(key) and value != "":
        return REDACTED
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**8:
        # An MSISDN passed as a number (a JSON body parsed somewhere) is still a number.
        return redact(str(value))
    return value


class RedactingFilter(logging.Filter):
    """Mask payer numbers and redact secrets in the message, the extras and exception text.

    Rewrites the record in place (message formatted, ``args`` dropped), once per record, so
    that every handler after it sees the safe version.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not lose the line
            message = f"{record.msg!r} {record.args!r}"
        record.msg = redact(message)
        record.args = None
        for name, value in list(vars(record).items()):
            if name not in _RECORD_ATTRIBUTES:
                setattr(record, name, redact_value(value, name))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        record._redacted = True
        return True


def _jsonable(value: Any) -> Any:
    """Plain JSON values; anything else as its text (so that it is redacted like text)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return str(value)


def _iso_utc(created: float) -> str:
    moment = datetime.fromtimestamp(created, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, tenant, and
    payment_id, event, other extras and exception text when there are any.

    The request id, tenant and payment id come from the record's extras when given, else
    from the request context (``gateway.request_context``). Output is redacted again here,
    so that a handler configured without ``RedactingFilter`` still leaks nothing.
    """

    def format(self, record: logging.LogRecord) -> str:
        # django.request passes the request itself: keep its id, not its repr.
        request = getattr(record, "request", None)
        entry: dict[str, Any] = {
            "time": _iso_utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None)
            or get_request_id()
            or getattr(request, "request_id", None),
            "tenant": getattr(record, "tenant", None) or get_tenant(),
        }
        payment_id = getattr(record, "payment_id", None) or get_payment_id()
        if payment_id:
            entry["payment_id"] = str(payment_id)
        for name, value in vars(record).items():
            if name not in _RECORD_ATTRIBUTES and name not in entry and name != "request":
                entry[name] = _jsonable(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(
            redact_value(entry), ensure_ascii=False, default=str, separators=(",", ":")
        )


@contextmanager
def log_context(*, tenant: str | None = None, payment_id: object = None) -> Iterator[None]:
    """Tag every log line inside the block with this tenant and payment (e.g. in the worker)."""
    tenant_token = current_tenant.set(tenant or None)
    payment_token = current_payment_id.set(str(payment_id) if payment_id else None)
    try:
        yield
    finally:
        current_payment_id.reset(payment_token)
        current_tenant.reset(tenant_token)


# Probes and scrapes are called every few seconds by machines; logging them is noise.
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

access_logger = logging.getLogger("gateway.access")


def _payment_id_of(request: HttpRequest, response: HttpResponse) -> str | None:
    bound = get_payment_id()
    if bound:
        return bound
    match = getattr(request, "resolver_match", None)
    candidate = match.kwargs.get("id") if match else None
    if candidate is None and request.method == "POST" and response.status_code == 201:
        data = getattr(response, "data", None)
        candidate = data.get("id") if isinstance(data, dict) else None
    try:
        return str(uuid.UUID(str(candidate))) if candidate else None
    except ValueError:
        return None


def _tenant_of(request: HttpRequest) -> str | None:
    bound = get_tenant()
    if bound:
        return bound
    # DRF puts its authenticated principal on the Django request; read it only if it is
    # already there (request.user may otherwise be a lazy object that would hit the session).
    from django.utils.functional import LazyObject

    principal = request.__dict__.get("user")
    if principal is None or isinstance(principal, LazyObject):
        return None
    tenant = getattr(principal, "tenant", None) if hasattr(principal, "api_key") else None
    return getattr(tenant, "slug", None)


class AccessLogMiddleware:
    """One ``gateway.access`` line per request (probes excepted), after the response.

    It also opens a fresh tenant/payment log context for the request, so that lines logged
    while the request runs carry what authentication and the services bind. This is the
    access log of the web process; gunicorn's own access log stays off (gunicorn.conf.py).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        tenant_token = current_tenant.set(None)
        payment_token = current_payment_id.set(None)
        started = time.monotonic()
        try:
            response = self.get_response(request)
            if request.path not in _QUIET_PATHS:
                duration_ms = round((time.monotonic() - started) * 1000, 1)
                access_logger.info(
                    "%s %s %s %sms",
                    request.method,
                    request.path,
                    response.status_code,
                    duration_ms,
                    extra={
                        "event": "http.request",
                        "tenant": _tenant_of(request),
                        "payment_id": _payment_id_of(request, response),
                        "method": request.method,
                        "path": request.path,
                        "status": response.status_code,
                        "duration_ms": duration_ms,
                    },
                )
            return response
        finally:
            current_payment_id.reset(payment_token)
            current_tenant.reset(tenant_token)
