"""How `flipkart-api serve` runs the app: granian's WSGI server, configured from the settings.

granian won the measured comparison with gunicorn sync and gthread workers (bench/results,
docs/decisions.md): its HTTP handling is Rust, so a request costs far less CPU outside the app.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .settings import Settings

APP = "flipkart_api.wsgi:app"
# Where prometheus-client's multi-process mode keeps the workers' values (metrics.py).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Longer than any request may take; compose/Swarm/Kubernetes stop grace periods exceed it.
GRACEFUL_STOP_SECONDS = 20
# request id as nginx sends it, so an access line can be matched with the app's log lines
ACCESS_LOG_FORMAT = (
    '%(addr)s "%(method)s %(path)s %(protocol)s" %(status)d %(dt_ms).1fms '
    "rid=%(header{x-request-id})s"
)
# dictConfig for granian's own loggers in JSON mode: logs.JsonFormatter for both.
GRANIAN_JSON_LOG_CONFIG = Path(__file__).with_name("granian_log.json")


def granian_access_log(settings: Settings) -> bool:
    """granian writes the access line in text mode only (and only with ACCESS_LOG on)."""
    return settings.effective_access_log and settings.log_format == "text"


def granian_argv(settings: Settings) -> list[str]:
    """The granian command line (after `python -m granian`) for these settings."""
    # An in-process cache is per process: with several workers a write in one would leave the
    # others serving stale reads, so without Redis there is exactly one worker.
    workers = settings.web_concurrency if settings.redis_url else 1
    argv = [
        "--interface",
        "wsgi",
        "--no-ws",  # WSGI has no websockets; saves granian saying so at every start
        "--host",
        settings.host,
        "--port",
        str(settings.port),
        "--workers",
        str(workers),
        # WSGI requests run on these threads; they wait on PostgreSQL and Redis, so a few.
        "--blocking-threads",
        str(settings.web_threads),
        "--respawn-failed-workers",
        "--workers-kill-timeout",
        str(GRACEFUL_STOP_SECONDS),
        "--log-level",
        settings.log_level.lower(),
        # In JSON mode the app writes the access line (access_log.py: granian's format cannot
        # escape JSON), and granian's own lines are JSON too (granian_log.json).
        "--access-log" if granian_access_log(settings) else "--no-access-log",
        "--access-log-fmt",
        ACCESS_LOG_FORMAT,
    ]
    if settings.log_format == "json":
        argv += ["--log-config", str(GRANIAN_JSON_LOG_CONFIG)]
    if settings.web_reload:
        argv += ["--reload"]
    return [*argv, APP]


def prepare_metrics(settings: Settings) -> None:
    """Give the workers one fresh directory for their metric values (before granian starts).

    PROMETHEUS_MULTIPROC_DIR if set (a Kubernetes emptyDir, say), else one per port under
    the temporary directory; emptied of its files, since an earlier run's would be summed
    into this one's counts. prometheus-client itself is loaded by the workers only.
    """
    if not settings.metrics_enabled:
        return
    default = Path(tempfile.gettempdir()) / f"flipkart-api-metrics-{settings.port}"
    directory = Path(os.environ.get(MULTIPROC_ENV) or default)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(directory)
