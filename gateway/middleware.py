"""Request ids and the JSON error envelope for errors raised outside DRF's views."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse

from gateway.errors import error_body
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
