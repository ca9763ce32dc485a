"""Prometheus metrics recorded where things happen: counters and histograms of this process.

Each HTTP exchange with MTN (latency, status, MTN's code), callback outcomes, webhook delivery
attempts, rate-limit rejections, cache fall-backs and database outages are recorded here by
the apps, one call where each thing happens. They belong to the process that did the work:
scrape every web process *and* every worker. The scrape itself (``/metrics``, the figures
read from the database, the worker's own port) sits on top of the apps, in ``shell.metrics``.

gunicorn runs several worker processes behind one port. With ``PROMETHEUS_MULTIPROC_DIR``
set (an empty directory per host, wiped at start by ``gunicorn.conf.py``), prometheus-client
keeps each process's counters in files there and ``/metrics`` adds them up, so one scrape
sees the whole gunicorn instance. Without it, each gunicorn worker answers only for itself.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from prometheus_client import CollectorRegistry, Counter, Histogram

if settings.PROMETHEUS_MULTIPROC_DIR:
    # prometheus-client writes a file there as soon as a metric is defined (below).
    Path(settings.PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)

# Metrics this process records. A registry of our own (not prometheus-client's global one),
# so that a scrape shows exactly the gateway's figures.
REGISTRY = CollectorRegistry(auto_describe=True)

_LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 15.0, 30.0)

MTN_CALL_SECONDS = Histogram(
    "momo_mtn_call_duration_seconds",
    "Duration of one HTTP exchange with MTN, answered or not, by product and operation.",
    ["product", "operation"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
MTN_CALLS = Counter(
    "momo_mtn_calls",
    "HTTP exchanges with MTN by product, operation and HTTP status ('none': no answer).",
    ["product", "operation", "status"],
    registry=REGISTRY,
)
MTN_CALL_ERRORS = Counter(
    "momo_mtn_call_errors",
    "MTN exchanges that were not 2xx, by product, operation and MTN's error code (or ours: "
    "TIMEOUT, CONNECT_TIMEOUT, NETWORK_ERROR, TLS_ERROR, HTTP_<status>).",
    ["product", "operation", "code"],
    registry=REGISTRY,
)
CALLBACKS = Counter(
    "momo_mtn_callbacks",
    "MTN callbacks processed, by door (signed, token) and outcome; a deferred callback is "
    "counted again when the worker confirms it.",
    ["door", "outcome"],
    registry=REGISTRY,
)
DELIVERY_ATTEMPTS = Counter(
    "momo_webhook_delivery_attempts",
    "Merchant webhook delivery attempts by result: succeeded (2xx), http_error (another "
    "status) or no_response (timeout, refused, unsafe or missing URL).",
    ["result"],
    registry=REGISTRY,
)
DELIVERY_SECONDS = Histogram(
    "momo_webhook_delivery_duration_seconds",
    "Duration of one merchant webhook delivery attempt.",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "momo_rate_limited_requests",
    "Requests refused with 429 by a rate limit: scope api (per API key) or callback (per "
    "client address on the MTN callback doors).",
    ["scope"],
    registry=REGISTRY,
)
RATE_LIMIT_FAIL_OPEN = Counter(
    "momo_rate_limit_fail_open",
    "Requests let through without a rate-limit check because Redis could not be reached, "
    "by scope (api, callback; mtn: calls to MTN under this process's share of an account's "
    "limits).",
    ["scope"],
    registry=REGISTRY,
)
CACHE_FALLBACK = Counter(
    "momo_cache_fallback",
    "Cache operations (MTN tokens, admin login counters) served from the process's own "
    "memory because Redis could not be reached.",
    registry=REGISTRY,
)
DATABASE_UNAVAILABLE = Counter(
    "momo_database_unavailable",
    "Requests answered 503 service_unavailable because the database could not be reached, "
    "by where it happened (api, callback, admin, other).",
    ["where"],
    registry=REGISTRY,
)


# --- recording (one call where each thing happens) ----------------------------------------


def observe_mtn_call(
    *, product: str, operation: str, status_code: int | None, code: str | None, seconds: float
) -> None:
    """An ``mtn.client`` call observer (registered by ``install``)."""
    MTN_CALL_SECONDS.labels(product, operation).observe(seconds)
    MTN_CALLS.labels(product, operation, str(status_code) if status_code else "none").inc()
    if status_code is None or status_code >= 300:
        MTN_CALL_ERRORS.labels(product, operation, code or f"HTTP_{status_code}").inc()


def callback_processed(*, door: str, outcome: str) -> None:
    CALLBACKS.labels(str(door), str(outcome)).inc()


def delivery_attempted(*, status_code: int | None, succeeded: bool, duration_ms: int) -> None:
    if succeeded:
        result = "succeeded"
    elif status_code is None:
        result = "no_response"
    else:
        result = "http_error"
    DELIVERY_ATTEMPTS.labels(result).inc()
    DELIVERY_SECONDS.observe(max(duration_ms, 0) / 1000)


def rate_limited(*, scope: str) -> None:
    RATE_LIMITED.labels(scope).inc()


def rate_limit_failed_open(*, scope: str) -> None:
    RATE_LIMIT_FAIL_OPEN.labels(scope).inc()


def cache_fell_back() -> None:
    CACHE_FALLBACK.inc()


def database_unavailable(*, where: str) -> None:
    DATABASE_UNAVAILABLE.labels(where).inc()
