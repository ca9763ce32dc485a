"""The scrape: ``GET /metrics`` on the web process, a port of its own for the worker.

Two kinds of figures:

- **From the database, at scrape time** (``DatabaseCollector``): payments, payouts and
  refunds by status and currency, those flagged for review, merchant webhook deliveries by
  state, and due work (rows whose ``next_attempt_at`` has passed) with its lag. A few
  ``GROUP BY`` queries per scrape; every process answers the same, so scraping any one web
  process is enough for these.
- **Recorded where things happen** (the counters and histograms of ``gateway.metrics``):
  each HTTP exchange with MTN (latency, status, MTN's code), callback outcomes, webhook
  delivery attempts and
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
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.crypto import constant_time_compare
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    ProcessCollector,
    generate_latest,
    make_wsgi_app,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.multiprocess import MultiProcessCollector

from gateway.metrics import REGISTRY, observe_mtn_call

logger = logging.getLogger("gateway.metrics")


def install() -> None:
    """Register the MTN call observer (``ShellConfig.ready``); safe to call twice."""
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
