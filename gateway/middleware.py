"""Request ids and the JSON error envelope for errors raised outside DRF's views."""

from __future__ import annotations

import io
import logging
import re
import sys
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.handlers.wsgi import LimitedStream
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


class _BodyTooLarge(Exception):
    pass


class _MalformedChunks(Exception):
    pass


def _read_decoded(stream: Any, limit: int) -> bytes:
    """Read a stream the server already de-chunks (gunicorn: ``wsgi.input_terminated``)."""
    parts: list[bytes] = []
    total = 0
    while True:
        part = stream.read(min(65536, limit + 1 - total))
        if not part:
            return b"".join(parts)
        parts.append(part)
        total += len(part)
        if total > limit:
            raise _BodyTooLarge


def _read_chunks(
    read: Callable[[int], bytes], readline: Callable[[int], bytes], limit: int
) -> bytes:
    """Decode ``Transfer-Encoding: chunked`` (RFC 9112 §7.1) from a raw stream."""
    parts: list[bytes] = []
    total = 0
    while True:
        line = readline(1024)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise _MalformedChunks from exc
        if size < 0:
            raise _MalformedChunks
        if size == 0:
            while readline(1024).strip():  # trailer fields, up to the blank line
                pass
            return b"".join(parts)
        total += size
        if total > limit:
            raise _BodyTooLarge
        data = read(size)
        if len(data) != size or read(2) != b"\r\n":
            raise _MalformedChunks
        parts.append(data)


def read_chunked_body(environ: dict[str, Any], limit: int) -> bytes:
    """The whole body of a request sent chunked, at most ``limit`` bytes.

    gunicorn de-chunks ``wsgi.input`` itself and says so with ``wsgi.input_terminated``;
    Django's development server (runserver, live_server) hands over the raw socket wrapped in
    a ``LimitedStream`` of length 0, so the chunks are decoded here from the stream beneath.
    """
    stream = environ["wsgi.input"]
    if environ.get("wsgi.input_terminated"):
        return _read_decoded(stream, limit)
    if isinstance(stream, LimitedStream):
        return _read_chunks(stream._read, stream._readline, limit)  # noqa: SLF001 - see above
    return _read_chunks(stream.read, stream.readline, limit)


class ChunkedBodyMiddleware:
    """Read a body sent with ``Transfer-Encoding: chunked`` and no ``Content-Length``.

    Django reads ``Content-Length`` bytes of a body and nothing when there is none, so a
    chunked body (MTN's callbacks may come so, through some proxies) looked empty. Here it is
    read whole (``DATA_UPLOAD_MAX_MEMORY_SIZE`` at most, or the path's own limit in
    ``BODY_LIMITS_BY_PATH``, else 413) and handed on as an
    ordinary body with its length, for DRF and the callback doors alike.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        meta = request.META
        if "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower() and not meta.get(
            "CONTENT_LENGTH"
        ):
            # A path with a larger limit of its own (a payout batch) keeps it when chunked.
            limit = settings.BODY_LIMITS_BY_PATH.get(
                request.path, settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            )
            try:
                body = read_chunked_body(meta, limit)
            except _BodyTooLarge:
                return _error(request, 413, f"The request body is larger than {limit} bytes.")
            except (_MalformedChunks, OSError):
                return _error(request, 400, "The chunked request body is malformed.")
            meta["CONTENT_LENGTH"] = str(len(body))
            request._stream = LimitedStream(io.BytesIO(body), len(body))  # type: ignore[attr-defined]
        return self.get_response(request)


def _error(request: HttpRequest, status: int, message: str) -> HttpResponse:
    # A body that cannot be read is reported as the contract's code for an unreadable body.
    code = "malformed_json" if status == 400 else _ERRORS_BY_STATUS[status][0]
    if _is_api_path(request.path):
        return JsonResponse(error_body(code, message), status=status)
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


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
