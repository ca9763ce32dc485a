"""Request ids and the JSON error envelope for errors raised outside DRF's views."""

from __future__ import annotations

import logging
import re
import sys
import uuid
from collections.abc import Callable

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

from gateway.errors import database_unavailable, error_body, is_database_unavailable
from gateway.request_context import current_request_id

logger = logging.getLogger("gateway.request")

# A client's X-Request-ID is echoed only if it is a sane token; anything else is replaced.
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

_ERRORS_BY_STATUS = {
    400: ("bad_request", "The request could not be understood."),
    403: ("forbidden", "You may not do this."),
    404: ("not_found", "Not found."),
    405: ("method_not_allowed", "This method is not allowed on this path."),
    413: ("payload_too_large", "The request body is too large."),
    500: ("internal_error", "An internal error occurred; it has been logged."),
}


def _is_api_path(path: str) -> bool:
    return path.startswith("/api/")


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        token = current_request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            current_request_id.reset(token)
        response["X-Request-ID"] = request_id
        return response


class ApiErrorMiddleware:
    """Render errors that never reached a DRF view (unknown path, crash) as the envelope."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            _is_api_path(request.path)
            and response.status_code >= 400
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            code, message = _ERRORS_BY_STATUS.get(
                response.status_code, ("error", "The request failed.")
            )
            replacement = JsonResponse(error_body(code, message), status=response.status_code)
            for header in ("Allow", "Retry-After"):
                if header in response:
                    replacement[header] = response[header]
            return replacement
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if is_database_unavailable(exception):
            return unavailable_response(request, exception)
        if not _is_api_path(request.path):
            return None
        if isinstance(exception, RequestDataTooBig):
            return JsonResponse(error_body(*_ERRORS_BY_STATUS[413]), status=413)
        logger.exception(
            "unhandled error on %s %s (request %s)",
            request.method,
            request.path,
            getattr(request, "request_id", None),
        )
        return JsonResponse(error_body(*_ERRORS_BY_STATUS[500]), status=500)


_UNAVAILABLE_PAGE = (
    "<!doctype html><title>Service unavailable</title><h1>Service unavailable</h1>"
    "<p>The database cannot be reached right now. Try again in a few seconds.</p>"
)


def unavailable_response(request: HttpRequest, exc: BaseException) -> HttpResponse:
    """503 with Retry-After: the API's JSON envelope under /api/, a plain page elsewhere
    (the admin), so that a database outage never shows as a 500 or a stack trace."""
    path = request.path
    where = "admin" if path.startswith("/admin/") else "other"
    if _is_api_path(path):
        where = "callback" if path.startswith("/api/v1/webhooks/") else "api"
    error = database_unavailable(exc, where=where, path=path)
    if _is_api_path(path):
        response: HttpResponse = JsonResponse(
            error_body(error.code, error.message), status=error.http_status
        )
    else:
        response = HttpResponse(_UNAVAILABLE_PAGE, status=error.http_status)
    for name, value in error.headers.items():
        response[name] = value
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: what escaped every view and middleware. A database outage met outside a
    view (a session saved on the way out) is still a 503; anything else stays Django's 500."""
    exc = sys.exc_info()[1]
    if exc is not None and is_database_unavailable(exc):
        return unavailable_response(request, exc)
    if _is_api_path(request.path):
        return JsonResponse(error_body(*_ERRORS_BY_STATUS[500]), status=500)
    return defaults.server_error(request)
