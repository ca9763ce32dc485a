"""Prometheus metrics: ``GET /metrics`` on the web process, a port of its own for the worker.

Two kinds of figures:

- **From the database, at scrape time** (``DatabaseCollector``): payments, payouts and
  refunds by status and currency, those flagged for review, merchant webhook deliveries by
  state, and due work (rows whose ``next_attempt_at`` has passed) with its lag. A few
  ``GROUP BY`` queries per scrape; every process answers the same, so scraping any one web
  process is enough for these.
- **Recorded where things happen** (counters and histograms below): each HTTP exchange with
  MTN (latency, status, MTN's code), callback outcomes, webhook delivery attempts and
  rate-limit rejections. These belong to the process that did the work: scrape every web
  process *and* every worker.

gunicorn runs several worker processes behind one port. With ``PROMETHEUS_MULTIPROC_DIR``
set (an empty directory per host, wiped at start by ``gunicorn.conf.py``), prometheus-client
keeps each process's counters in files there and ``/metrics`` adds them up, so one scrape
sees the whole gunicorn instance. Without it, each gunicorn worker answers only for itself.

Access: with ``METRICS_TOKEN`` set, a scrape needs ``Authorization: Bearer <METRICS_TOKEN>``
(401 otherwise). Unset, ``/metrics`` is open with ``DEBUG`` on and 404 with ``DEBUG`` off.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.crypto import constant_time_compare
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
    make_wsgi_app,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.multiprocess import MultiProcessCollector

logger = logging.getLogger(__name__)

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


def install() -> None:
    """Register the MTN call observer (``GatewayConfig.ready``); safe to call twice."""
    from mtn import client

    if observe_mtn_call not in client.call_observers:
        client.call_observers.append(observe_mtn_call)


# --- figures read from the database at scrape time ----------------------------------------


class DatabaseCollector:
    """Counts that every process reads the same way from PostgreSQL (or SQLite)."""

    def describe(self) -> Iterable[Metric]:
        # Nothing at registration time: no query until the first scrape.
        return []

    def collect(self) -> Iterator[Metric]:
        from django.db import DatabaseError

        up = GaugeMetricFamily(
            "momo_database_up", "1 when the figures below could be read from the database."
        )
        try:
            metrics = list(self._read())
        except DatabaseError:
            logger.warning("metrics: could not read from the database", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from metrics

    @staticmethod
    def _read() -> Iterator[Metric]:
        # Imported here: this module is imported before the app registry is ready.
        from django.db.models import Count, Min, Q
        from django.utils import timezone

        from payments.models import Payment, Payout, Refund
        from webhooks.models import MerchantDelivery, MtnCallback

        for model, name in ((Payment, "payments"), (Payout, "payouts"), (Refund, "refunds")):
            family = GaugeMetricFamily(
                f"momo_{name}",
                f"{name.capitalize()} by status and currency, from the database.",
                labels=["status", "currency"],
            )
            review = GaugeMetricFamily(
                f"momo_{name}_needing_review",
                f"{name.capitalize()} flagged for review (MTN's record differed from ours).",
            )
            flagged = 0
            rows = (
                model.objects.order_by()
                .values("status", "currency")
                .annotate(n=Count("pk"), flagged=Count("pk", filter=Q(needs_review=True)))
            )
            for row in rows:
                family.add_metric([row["status"], row["currency"]], row["n"])
                flagged += row["flagged"]
            review.add_metric([], flagged)
            yield family
            yield review

        deliveries = GaugeMetricFamily(
            "momo_webhook_deliveries",
            "Merchant webhook deliveries by state (pending: the backlog still to deliver; "
            "failed: every scheduled attempt failed).",
            labels=["state"],
        )
        for row in MerchantDelivery.objects.order_by().values("state").annotate(n=Count("pk")):
            deliveries.add_metric([row["state"]], row["n"])
        yield deliveries

        now = timezone.now()
        due = GaugeMetricFamily(
            "momo_due_work",
            "Rows of background work due now and not yet claimed by a worker, by kind.",
            labels=["kind"],
        )
        lag = GaugeMetricFamily(
            "momo_due_work_lag_seconds",
            "How long the oldest due piece of work of each kind has been waiting (0: none).",
            labels=["kind"],
        )
        kinds = (
            ("payment", Payment),
            ("payout", Payout),
            ("refund", Refund),
            ("callback", MtnCallback),
            ("webhook", MerchantDelivery),
        )
        for kind, model in kinds:
            found = model.objects.filter(next_attempt_at__lte=now).aggregate(
                n=Count("pk"), oldest=Min("next_attempt_at")
            )
            due.add_metric([kind], found["n"])
            waited = (now - found["oldest"]).total_seconds() if found["oldest"] else 0.0
            lag.add_metric([kind], max(waited, 0.0))
        yield due
        yield lag


class _Scrape:
    """What one scrape collects: this process (or all of gunicorn's), and the database."""

    def __init__(self, *, database: bool = True) -> None:
        self.database = database

    def collect(self) -> Iterator[Metric]:
        directory = settings.PROMETHEUS_MULTIPROC_DIR
        if directory:
            registry = CollectorRegistry(auto_describe=False)
            MultiProcessCollector(registry, path=directory)
            yield from registry.collect()
        else:
            yield from REGISTRY.collect()
            yield from ProcessCollector(registry=None).collect()
        if self.database:
            yield from DatabaseCollector().collect()


def render() -> bytes:
    """The exposition text of a scrape."""
    return generate_latest(_Scrape())  # type: ignore[arg-type]


def _authorized(header: str | None) -> bool | None:
    """True/False for a given/wrong token; None when no token is configured."""
    token = settings.METRICS_TOKEN
    if not token:
        return None
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and constant_time_compare(given.strip(), token)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """``GET /metrics``: Bearer ``METRICS_TOKEN``; without a token only with ``DEBUG`` on."""
    allowed = _authorized(request.headers.get("Authorization"))
    if allowed is None and not settings.DEBUG:
        return HttpResponse("Not found.\n", status=404, content_type="text/plain")
    if allowed is False:
        response = HttpResponse("A valid bearer token is required.\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        response["Content-Type"] = "text/plain"
        return response
    if request.method not in ("GET", "HEAD"):
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD"})
    return HttpResponse(render(), content_type=CONTENT_TYPE_LATEST)


# --- the worker's own port ----------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds are not worth a log line."""


def _guarded_app(app: Any) -> Any:
    def guarded(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        allowed = _authorized(environ.get("HTTP_AUTHORIZATION"))
        if allowed is False:
            start_response(
                "401 Unauthorized",
                [("Content-Type", "text/plain"), ("WWW-Authenticate", 'Bearer realm="metrics"')],
            )
            return [b"A valid bearer token is required.\n"]
        return app(environ, start_response)

    return guarded


def serve_worker_metrics() -> threading.Thread | None:
    """Serve this process's metrics on ``WORKER_METRICS_PORT`` (``run_worker``); None if unset.

    The worker has no web server of its own, so it gets a small one in a daemon thread. It
    answers ``METRICS_TOKEN`` like ``/metrics`` does (open when no token is set: bind it to
    a private address). The database figures are left to the web processes' ``/metrics``.
    """
    port = settings.WORKER_METRICS_PORT
    if not port:
        return None
    app = _guarded_app(make_wsgi_app(_Scrape(database=False)))  # type: ignore[arg-type]
    try:
        server = make_server(
            settings.WORKER_METRICS_ADDR,
            port,
            app,
            server_class=ThreadingWSGIServer,
            handler_class=_QuietHandler,
        )
    except OSError:
        logger.exception("worker metrics: cannot listen on port %s; going on without", port)
        return None
    thread = threading.Thread(target=server.serve_forever, name="worker-metrics", daemon=True)
    thread.start()
    logger.info(
        "worker metrics on http://%s:%s/metrics",
        settings.WORKER_METRICS_ADDR,
        port,
        extra={"event": "worker.metrics_started"},
    )
    return thread
