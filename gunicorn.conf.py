"""gunicorn settings for momo-gateway: ``gunicorn --config gunicorn.conf.py gateway.wsgi``.

A server's configuration file rather than the application's, so it reads its own variables
from the environment (docs/operations.md lists them all):

    GUNICORN_BIND             where to listen              0.0.0.0:$PORT (PORT: 8000)
    WEB_CONCURRENCY           worker processes             2 x CPU cores + 1, at most 12
    GUNICORN_THREADS          threads per worker           4 (1 = plain sync workers)
    GUNICORN_TIMEOUT          seconds a worker may stay silent before it is killed   30
    GUNICORN_GRACEFUL_TIMEOUT seconds for requests in flight on SIGTERM / reload     30
    GUNICORN_KEEPALIVE        seconds an idle keep-alive connection stays open        5
    GUNICORN_MAX_REQUESTS     recycle a worker after this many requests (0: never)    0
    FORWARDED_ALLOW_IPS       proxies trusted for X-Forwarded-*  (read by gunicorn)   127.0.0.1,::1
    LOG_FORMAT, DEBUG         json (the default with DEBUG off) or plain, as in gateway/settings.py
    PROMETHEUS_MULTIPROC_DIR  where the workers share their metrics (see gateway/metrics.py)

Threads: no request waits on MTN unless asked to (creates answer at once; run_worker talks to
MTN). The few that do (a create with Prefer: wait, at most 10 s; a payer look-up; the admin's
re-check) each hold at most PREFER_WAIT_SLOTS, PAYER_LOOKUP_SLOTS and ADMIN_RECHECK_SLOTS
threads of a process (1 each by default), so with 4 threads at least one is always free for
reads and MTN's callbacks. The longest request fits inside the 30-second timeouts.
"""

import logging
import os
from pathlib import Path

_TRUE = {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def _cores() -> int:
    # The CPUs this process may run on (a container's cpuset), not all of the host's.
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:
        return os.cpu_count() or 1


wsgi_app = "gateway.wsgi:application"
proc_name = "momo-gateway"

bind = [os.environ.get("GUNICORN_BIND") or f"0.0.0.0:{_int('PORT', 8000)}"]
workers = _int("WEB_CONCURRENCY", min(2 * _cores() + 1, 12))
threads = _int("GUNICORN_THREADS", 4)
worker_class = "gthread" if threads > 1 else "sync"
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Off by default: with PROMETHEUS_MULTIPROC_DIR every recycled worker leaves a file behind
# that each scrape must read. Turn it on only to contain a memory leak.
max_requests = _int("GUNICORN_MAX_REQUESTS", 0)
max_requests_jitter = max(max_requests // 10, 0)
# The heartbeat file in memory, not on a container's overlay disk (gunicorn's advice).
worker_tmp_dir = "/dev/shm" if Path("/dev/shm").is_dir() else None  # noqa: S108
# Scaling is done by running more processes, not by gunicorn's runtime control socket; it
# would also make two instances on one host (or one user) fight over ~/.gunicorn.
control_socket_disable = True

# Logs: the application logs each request itself (gateway.logging.AccessLogMiddleware, with
# the request id and tenant), so gunicorn's access log stays off; gunicorn's own lines go to
# stderr in the same JSON format.
accesslog = None
loglevel = os.environ.get("LOG_LEVEL", "INFO").lower()
_debug = os.environ.get("DEBUG", "true").strip().lower() in _TRUE
_log_format = os.environ.get("LOG_FORMAT", "").strip().lower() or ("plain" if _debug else "json")
if _log_format == "json":
    # Python warnings too become JSON lines (logger "py.warnings"), not bare text on stderr.
    logging.captureWarnings(True)
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": "gateway.logging.RedactingFilter"}},
        "formatters": {"json": {"()": "gateway.logging.JsonFormatter"}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "filters": ["redact"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": "INFO", "handlers": ["console"]},
        "loggers": {
            "gunicorn.error": {
                "level": loglevel.upper(),
                "handlers": ["console"],
                "propagate": False,
            },
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False},
        },
    }

_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()


def on_starting(server):
    """Start from an empty metrics directory: files of an earlier run would be added in."""
    if _metrics_dir:
        path = Path(_metrics_dir)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):  # only prometheus-client's files, nothing else
            stale.unlink()


def child_exit(server, worker):
    """Forget a dead worker's live gauges (its counters stay counted)."""
    if _metrics_dir:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, _metrics_dir)
