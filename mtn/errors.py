"""Typed errors for every way a call to MTN MoMo can fail, and the one place that classifies them.

MTN answers errors in four body shapes (reference section 6.1): MoMo ``{code, message}``,
Azure APIM ``{statusCode, message}``, the token endpoint's ``{error}``, or an empty/non-JSON
body. The retry decision depends on the HTTP status *and* the MoMo code, because MTN reports
configuration mistakes as HTTP 500 (``NOT_ALLOWED``, ``INVALID_CURRENCY``...) which must never
be retried, while ``SERVICE_UNAVAILABLE`` can come back as 500 or 503 and should be.
"""

from __future__ import annotations

import contextlib
import email.utils
import re
import time
from typing import Any

import requests

# Outage codes: retry with the same X-Reference-Id (a 409 later proves an earlier try landed).
RETRYABLE_CODES = frozenset({"SERVICE_UNAVAILABLE", "INTERNAL_PROCESSING_ERROR"})

# Configuration mistakes MTN reports as HTTP 500; a retry can never fix them.
CONFIGURATION_CODES = frozenset(
    {
        "NOT_ALLOWED",
        "NOT_ALLOWED_TARGET_ENVIRONMENT",
        "INVALID_CALLBACK_URL_HOST",
        "INVALID_CURRENCY",
    }
)

# Business refusals that sometimes come back synchronously (sparkplug's table lists them as
# HTTP 500) instead of as a FAILED status; permanent for this request.
REJECTION_CODES = frozenset(
    {
        "PAYER_NOT_FOUND",
        "PAYEE_NOT_FOUND",
        "NOT_ENOUGH_FUNDS",
        "PAYER_LIMIT_REACHED",
        "PAYEE_NOT_ALLOWED_TO_RECEIVE",
        "PAYMENT_NOT_APPROVED",
        "APPROVAL_REJECTED",
        "EXPIRED",
        "TRANSACTION_CANCELED",
        "COULD_NOT_PERFORM_TRANSACTION",
        "SENDER_ACCOUNT_NOT_ACTIVE",
        "NOT_SUCCESSFULLY_COMPLETED",
    }
)

AUTHENTICATION_CODES = frozenset({"login_failed", "LOGIN_FAILED", "UNAUTHORIZED"})

# Longest Retry-After we believe; APIM says seconds, a huge value is more likely a bug.
MAX_RETRY_AFTER_SECONDS = 300.0

_TRY_AGAIN_IN = re.compile(r"try again in (\d+(?:\.\d+)?) second", re.IGNORECASE)


class MtnError(Exception):
    """Base of every MTN failure. ``code`` is MTN's code when it sent one, else ours."""

    default_retryable = False

    def __init__(
        self,
        code: str,
        message: str = "",
        *,
        retryable: bool | None = None,
        status_code: int | None = None,
        retry_after: float | None = None,
        body: Any = None,
    ) -> None:
        self.code = code
        self.message = message or code
        self.retryable = self.default_retryable if retryable is None else retryable
        self.status_code = status_code
        self.retry_after = retry_after
        self.body = body
        super().__init__(f"{code}: {self.message}" if message else code)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, status_code={self.status_code!r}, "
            f"retryable={self.retryable!r})"
        )


class MtnRetryableError(MtnError):
    """A transient failure: try again later with the same reference."""

    default_retryable = True


class MtnNetworkError(MtnRetryableError):
    """No HTTP answer at all (timeout, refused, reset). The POST may or may not have landed."""


class MtnRateLimitedError(MtnRetryableError):
    """HTTP 429; ``retry_after`` holds the wait MTN asked for, when it said."""


class MtnRejectedError(MtnError):
    """MTN refused this request permanently; resending it unchanged will fail the same way."""


class MtnConfigurationError(MtnRejectedError):
    """Our MTN set-up is wrong (target environment, callback host, currency, permissions)."""


class MtnAuthenticationError(MtnError):
    """Credentials refused: bad subscription key (APIM 401/403) or bad API user/key."""


class MtnNotFoundError(MtnError):
    """404 ``RESOURCE_NOT_FOUND``: on a status call, the reference never reached MTN."""


class MtnConflictError(MtnError):
    """409 ``RESOURCE_ALREADY_EXIST``: the X-Reference-Id was already used (an earlier try)."""


class MtnProtocolError(MtnError):
    """MTN answered something we cannot read (e.g. a 200 that is not the documented JSON)."""


def decode_body(response: requests.Response) -> Any:
    """The JSON body, or ``None`` when it is empty or not JSON (APIM/IIS pages are HTML)."""
    try:
        content = response.content
    except Exception:  # noqa: BLE001 - a broken stream is just "no body" for classification
        return None
    if not content or not content.strip():
        return None
    try:
        return response.json()
    except ValueError:
        return None


def parse_retry_after(response: requests.Response, body: Any = None) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or HTTP date) or APIM's message text."""
    raw = response.headers.get("Retry-After")
    seconds: float | None = None
    if raw:
        raw = raw.strip()
        try:
            seconds = float(raw)
        except ValueError:
            with contextlib.suppress(TypeError, ValueError, IndexError):
                when = email.utils.parsedate_to_datetime(raw)
                seconds = when.timestamp() - time.time()
    if seconds is None and isinstance(body, dict):
        # APIM: "Rate limit is exceeded. Try again in 1 seconds."
        match = _TRY_AGAIN_IN.search(str(body.get("message", "")))
        if match:
            seconds = float(match.group(1))
    if seconds is None or seconds != seconds:  # NaN guard
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def _code_and_message(body: Any) -> tuple[str | None, str, bool]:
    """(code, message, is_gateway_error) from any of MTN's error body shapes."""
    if not isinstance(body, dict):
        text = body if isinstance(body, str) else ""
        return None, text, False
    message = body.get("message")
    message = message if isinstance(message, str) else ""
    code = body.get("code")
    if isinstance(code, str) and code:
        return code, message, False
    error = body.get("error")
    if isinstance(error, str) and error:
        description = body.get("error_description")
        return error, message or (description if isinstance(description, str) else ""), False
    return None, message, "statusCode" in body


def classify_response(response: requests.Response) -> MtnError:
    """Turn a non-success MTN response into the right :class:`MtnError` (never raises it)."""
    status = response.status_code
    body = decode_body(response)
    code, message, is_gateway = _code_and_message(body)
    extra: dict[str, Any] = {"status_code": status, "body": body}

    if status == 409 and code in (None, "RESOURCE_ALREADY_EXIST"):
        return MtnConflictError(code or "RESOURCE_ALREADY_EXIST", message, **extra)
    if code in RETRYABLE_CODES:
        # SERVICE_UNAVAILABLE arrives as 503 or 500; INTERNAL_PROCESSING_ERROR is MTN's generic
        # transient failure. Both are retried with the same reference.
        return MtnRetryableError(
            code, message, retry_after=parse_retry_after(response, body), **extra
        )
    if status == 429:
        return MtnRateLimitedError(
            code or "RATE_LIMITED",
            message or "Rate limit exceeded",
            retry_after=parse_retry_after(response, body),
            **extra,
        )
    if code in CONFIGURATION_CODES:
        return MtnConfigurationError(code, message, **extra)
    if code in REJECTION_CODES:
        return MtnRejectedError(code, message, **extra)
    if code in AUTHENTICATION_CODES or status in (401, 403):
        default = "SUBSCRIPTION_KEY_REJECTED" if is_gateway else "UNAUTHORIZED"
        if status == 403:
            default = "FORBIDDEN"
        return MtnAuthenticationError(code or default, message, **extra)
    if status == 404:
        return MtnNotFoundError(code or "RESOURCE_NOT_FOUND", message, **extra)
    if status in (502, 503, 504):
        return MtnRetryableError(
            code or f"HTTP_{status}",
            message,
            retry_after=parse_retry_after(response, body),
            **extra,
        )
    if status >= 500:
        # A 500 without a code we know is MTN's flaky platform (reference section 10); a retry
        # with the same reference is safe because a landed POST answers 409.
        return MtnRetryableError(code or f"HTTP_{status}", message, **extra)
    if 400 <= status < 500:
        return MtnRejectedError(code or f"HTTP_{status}", message, **extra)
    return MtnProtocolError(
        code or "UNEXPECTED_RESPONSE", message or f"Unexpected HTTP {status} from MTN", **extra
    )


def classify_exception(exc: requests.RequestException) -> MtnError:
    """A transport failure (no HTTP answer) as a retryable :class:`MtnNetworkError`."""
    # Connect timeouts mean the request never left; read timeouts and resets are ambiguous
    # (the POST may have landed), which is why retries reuse the same X-Reference-Id.
    if isinstance(exc, requests.ConnectTimeout):
        return MtnNetworkError("CONNECT_TIMEOUT", "Timed out connecting to MTN")
    if isinstance(exc, requests.Timeout):
        return MtnNetworkError("TIMEOUT", "Timed out waiting for MTN's answer")
    if isinstance(exc, requests.exceptions.SSLError):
        # A certificate problem does not heal by retrying in a second; it is set-up.
        return MtnConfigurationError("TLS_ERROR", "TLS verification of MTN's host failed")
    if isinstance(exc, requests.ConnectionError):
        return MtnNetworkError("NETWORK_ERROR", "Could not reach MTN or the connection dropped")
    return MtnNetworkError("NETWORK_ERROR", type(exc).__name__)


# What an operator checking an account (``mtn_account_check``) reads for each refusal.
SUBSCRIPTION_KEY_CODES = frozenset({"SUBSCRIPTION_KEY_REJECTED"})


def explain_refusal(
    exc: MtnError, *, product: str, step: str, target_environment: str, base_url: str
) -> str:
    """Say in words which credential or setting MTN refused when ``step`` ("token" or
    "balance") of ``product`` failed. Never includes a secret: only MTN's code and message.
    """
    if isinstance(exc, MtnNetworkError):
        return f"MTN could not be reached at {base_url} ({exc.code}); check the base URL."
    if exc.code == "TLS_ERROR":
        return f"TLS verification of {base_url} failed; check the base URL."
    if exc.code == "PRODUCT_NOT_CONFIGURED":
        return f"The account has no {product} credentials."
    is_gateway = isinstance(exc.body, dict) and "statusCode" in exc.body
    if exc.code in SUBSCRIPTION_KEY_CODES or (exc.status_code == 401 and is_gateway):
        return (
            f"MTN refused the {product} subscription key (Ocp-Apim-Subscription-Key): use "
            f"the primary or secondary key of the {product} product for this environment."
        )
    if step == "token" and isinstance(exc, MtnAuthenticationError):
        return (
            f"MTN refused the {product} API user or API key ({exc.code}): check the API user "
            "id and its key, and that they were issued for this environment."
        )
    if exc.code == "NOT_ALLOWED_TARGET_ENVIRONMENT":
        return (
            f"MTN refused the target environment {target_environment!r} for the {product} "
            "API user: the user belongs to another environment (in the sandbox: it was "
            "created with another product's subscription key)."
        )
    if exc.status_code == 403:
        return (
            f"MTN refused this caller on {product} (403): MTN may not have whitelisted "
            "this server's IP address."
        )
    if exc.code == "NOT_ALLOWED":
        return f"MTN does not allow this API user to use {product} (NOT_ALLOWED); ask MTN."
    if isinstance(exc, MtnAuthenticationError):
        return f"MTN refused the {product} token it had just issued ({exc.code})."
    return f"MTN answered {exc.code} on the {product} {step}: {exc.message}"
