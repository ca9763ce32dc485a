"""One error type for the whole gateway and the API's error envelope.

Every error under ``/api/`` is rendered as
``{"error": {"code": "<stable_snake_case>", "message": "<text>", "fields"?: {...}}}``.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import InterfaceError as DjangoInterfaceError
from django.db import OperationalError as DjangoOperationalError
from django.http import Http404
from django_ratelimit.exceptions import Ratelimited
from rest_framework import exceptions as drf_exceptions
from rest_framework import status
from rest_framework.response import Response

from gateway import metrics

logger = logging.getLogger(__name__)


class GatewayError(Exception):
    """Base of every error the API reports on purpose; each app subclasses it."""

    code = "error"
    http_status = status.HTTP_400_BAD_REQUEST
    default_message = "The request could not be processed."

    def __init__(
        self,
        message: str | None = None,
        *,
        fields: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.fields = fields
        self.headers = headers or {}
        super().__init__(self.message)


class ValidationFailed(GatewayError):
    code = "validation_error"
    default_message = "The request is not valid."


class MalformedJson(GatewayError):
    code = "malformed_json"
    default_message = "The request body is not valid JSON."


class AuthenticationFailed(GatewayError):
    code = "authentication_failed"
    http_status = status.HTTP_401_UNAUTHORIZED
    default_message = "Missing, unknown or revoked API key."


class TenantSuspended(GatewayError):
    code = "tenant_suspended"
    http_status = status.HTTP_403_FORBIDDEN
    default_message = "This tenant is suspended."


class NotFound(GatewayError):
    code = "not_found"
    http_status = status.HTTP_404_NOT_FOUND
    default_message = "Not found."


class MethodNotAllowed(GatewayError):
    code = "method_not_allowed"
    http_status = status.HTTP_405_METHOD_NOT_ALLOWED
    default_message = "This method is not allowed on this path."


class RateLimited(GatewayError):
    code = "rate_limited"
    http_status = status.HTTP_429_TOO_MANY_REQUESTS
    default_message = "Too many requests; retry later."


class PayloadTooLarge(GatewayError):
    code = "payload_too_large"
    http_status = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_message = "The request body is too large."


class UnsupportedMediaType(GatewayError):
    code = "unsupported_media_type"
    http_status = status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
    default_message = "Send the body as application/json."


class Forbidden(GatewayError):
    code = "forbidden"
    http_status = status.HTTP_403_FORBIDDEN
    default_message = "You may not do this."


class ServiceUnavailable(GatewayError):
    code = "service_unavailable"
    http_status = status.HTTP_503_SERVICE_UNAVAILABLE
    default_message = (
        "The database cannot be reached right now; retry after Retry-After seconds, with the "
        "same Idempotency-Key for a create."
    )

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


# What a client is told to wait when the database is down: a PostgreSQL restart or failover
# takes seconds, and a retry against a database that is still down costs the gateway little.
RETRY_AFTER_SECONDS = 5


def _unavailable_types() -> tuple[type[BaseException], ...]:
    # Django wraps the driver's errors in its own, but a few paths (a connection being set up
    # or closed) can let psycopg's through.
    types: tuple[type[BaseException], ...] = (DjangoOperationalError, DjangoInterfaceError)
    try:
        import psycopg
    except ImportError:  # SQLite-only installs
        return types
    return (*types, psycopg.OperationalError, psycopg.InterfaceError)


_DATABASE_UNAVAILABLE = _unavailable_types()


def is_database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be used right now (down, restarting, cut
    off, connection lost, or too busy: a lock or statement timeout), rather than a bug.

    These are the DB-API's OperationalError and InterfaceError: "errors related to the
    database's operation and not necessarily under the control of the programmer".
    """
    return isinstance(exc, _DATABASE_UNAVAILABLE)


class OccasionalWarning:
    """A warning logged at most once per ``every`` seconds per process, however often it
    happens; the next line says how many were not logged in between."""

    def __init__(self, logger: logging.Logger, every: float) -> None:
        self.logger = logger
        self.every = every
        self._lock = threading.Lock()
        self._logged_at: float | None = None
        self._skipped = 0

    def __call__(self, message: str, *args: Any, **kwargs: Any) -> None:
        now = time.monotonic()
        with self._lock:
            if self._logged_at is not None and now - self._logged_at < self.every:
                self._skipped += 1
                return
            skipped, self._skipped, self._logged_at = self._skipped, 0, now
        if skipped:
            message += " (%d more since the last such line)"
            args = (*args, skipped)
        self.logger.warning(message, *args, **kwargs)


_database_warning = OccasionalWarning(logging.getLogger("gateway.database"), every=10.0)


def database_unavailable(exc: BaseException, *, where: str, path: str) -> ServiceUnavailable:
    """Record a request refused because the database is unavailable; the error to answer.

    One warning line every few seconds at most, without a traceback: an outage is news
    once, not on every request, and it is not a bug.
    """
    metrics.database_unavailable(where=where)
    _database_warning(
        "database unavailable (%s: %s); answering 503 on %s",
        type(exc).__name__,
        str(exc).strip().splitlines()[0] if str(exc).strip() else "",
        path,
        extra={"event": "database.unavailable"},
    )
    return ServiceUnavailable()


class NotAcceptable(GatewayError):
    code = "not_acceptable"
    http_status = status.HTTP_406_NOT_ACCEPTABLE
    default_message = "Only application/json responses are available."


def error_body(code: str, message: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    return {"error": error}


def error_response(exc: GatewayError) -> Response:
    return Response(
        error_body(exc.code, exc.message, exc.fields), status=exc.http_status, headers=exc.headers
    )


def _flatten_fields(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested ``ValidationError.detail`` as ``{"field": ["message", ...]}``."""
    fields: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if key == "non_field_errors" and not prefix:
                name = "non_field_errors"
            fields.update(_flatten_fields(value, name))
    elif isinstance(detail, list):
        messages = [str(item) for item in detail if not isinstance(item, dict | list)]
        if messages:
            fields[prefix or "non_field_errors"] = messages
        for index, item in enumerate(detail):
            if isinstance(item, dict | list):
                fields.update(_flatten_fields(item, f"{prefix}[{index}]"))
    else:
        fields[prefix or "non_field_errors"] = [str(detail)]
    return fields


def translate_exception(exc: Exception) -> GatewayError | None:
    """Map Django's and DRF's own exceptions onto the contract's error codes."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, drf_exceptions.ParseError):
        return MalformedJson(str(exc.detail))
    if isinstance(exc, drf_exceptions.ValidationError):
        fields = _flatten_fields(exc.detail)
        return ValidationFailed(fields=fields)
    if isinstance(exc, drf_exceptions.NotAuthenticated | drf_exceptions.AuthenticationFailed):
        return AuthenticationFailed()
    if isinstance(exc, Ratelimited):
        return RateLimited()
    if isinstance(exc, drf_exceptions.Throttled):
        wait = int(exc.wait or 1)
        return RateLimited(headers={"Retry-After": str(max(wait, 1))})
    if isinstance(exc, Http404 | drf_exceptions.NotFound):
        return NotFound()
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return MethodNotAllowed()
    if isinstance(exc, drf_exceptions.UnsupportedMediaType):
        return UnsupportedMediaType()
    if isinstance(exc, drf_exceptions.PermissionDenied | PermissionDenied):
        return Forbidden()
    if isinstance(exc, drf_exceptions.NotAcceptable):
        return NotAcceptable()
    return None


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's exception handler: every known error becomes the contract's envelope.

    Unknown exceptions return ``None`` so that they stay 500s (rendered as the envelope by
    ``ApiErrorMiddleware``) and are logged with the request id: a 500 is a bug to fix.
    """
    if is_database_unavailable(exc):
        request = context.get("request")
        path = request.path if request is not None else ""
        where = "callback" if path.startswith("/api/v1/webhooks/") else "api"
        return error_response(database_unavailable(exc, where=where, path=path))
    translated = translate_exception(exc)
    if translated is None:
        return None
    response = error_response(translated)
    wait = getattr(exc, "wait", None)
    if isinstance(exc, drf_exceptions.Throttled) and wait:
        response["Retry-After"] = str(max(int(wait), 1))
    return response
