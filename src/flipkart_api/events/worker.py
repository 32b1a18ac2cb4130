"""`flipkart-api worker`: delivers events until SIGTERM, then finishes what it is sending.

PostgreSQL: the relay (relay.py) fans committed events out into deliveries and their jobs,
and a procrastinate worker (queue.py) runs WORKER_CONCURRENCY of those jobs at once, woken
by LISTEN/NOTIFY, polling every WORKER_POLL_SECONDS for retries; on SIGTERM it takes no new
job and waits for the running ones (bounded by their timeouts). SQLite: the embedded loop in the
foreground. Either way /livez, /readyz and /metrics are served on WORKER_HEALTH_PORT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from typing import Any

from prometheus_client import REGISTRY
from sqlalchemy import make_url, text

from ..settings import Settings
from .worker_health import HealthServer
from .worker_metrics import QueueCollector

log = logging.getLogger(__name__)


def run_worker(settings: Settings) -> None:
    """Build the app (for its sessions, caches and purges), serve the probes, deliver."""
    from .. import create_app

    _check_smtp_url(settings)
    flask_app = create_app(settings)
    engine = flask_app.extensions["db_engine"]

    def database_answers() -> bool:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True

    REGISTRY.register(QueueCollector(engine))
    health = HealthServer(
        settings.worker_health_host, settings.worker_health_port, database_answers, REGISTRY
    )
    health.start()
    log.info("worker probes on %s:%d", settings.worker_health_host, health.port)
    try:
        if settings.uses_sqlite:
            _run_embedded(flask_app, health)
        else:
            asyncio.run(_run_procrastinate(flask_app, settings, health))
    finally:
        health.stop()
    log.info("worker stopped")


def _check_smtp_url(settings: Settings) -> None:
    """A bad SMTP_URL stops the worker now (exit 2), not an email per order later."""
    from .mail import SmtpConfig

    if settings.smtp_url:
        try:
            SmtpConfig.from_url(settings.smtp_url, settings.mail_from)
        except ValueError as exc:
            print(f"configuration error: SMTP_URL: {exc}", file=sys.stderr)
            raise SystemExit(2) from None


def shutdown_grace(settings: Settings) -> float:
    """How long SIGTERM waits for running jobs: longer than one attempt can take."""
    return 2 * max(settings.webhook_timeout_seconds, settings.smtp_timeout_seconds) + 5


def _run_embedded(flask_app: Any, health: HealthServer) -> None:
    from .embedded import EmbeddedWorker, lease_seconds

    worker = EmbeddedWorker(flask_app)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: worker.stopping.set())
    worker.start()
    health.started = True
    settings = flask_app.config["SETTINGS"]
    # The loop beats once a round; a round is at most a poll plus a batch of attempts.
    silent = settings.worker_poll_seconds + lease_seconds(settings)
    while not worker.stopping.is_set():
        if time.monotonic() - worker.last_beat < silent:
            health.beat()
        worker.stopping.wait(1.0)
    worker.stop(timeout=shutdown_grace(settings))


def procrastinate_app(settings: Settings) -> Any:
    """A procrastinate app on DATABASE_URL with the tasks (opened by the caller)."""
    import procrastinate

    from .queue import NAMESPACE, blueprint

    conninfo = make_url(settings.effective_database_url).set(drivername="postgresql")
    connector = procrastinate.PsycopgConnector(
        conninfo=conninfo.render_as_string(hide_password=False),
        min_size=1,
        max_size=settings.worker_concurrency + 2,
    )  # procrastinate's pool checks each connection it lends (a database restart is no error)
    app = procrastinate.App(connector=connector)
    app.add_tasks_from(blueprint(), namespace=NAMESPACE)
    return app


def worker_options(settings: Settings, flask_app: Any) -> dict[str, Any]:
    """run_worker_async's arguments: concurrency, polling, heartbeats, graceful shutdown."""
    from .queue import QUEUE

    return {
        "queues": [QUEUE],
        "name": "flipkart-worker",
        "concurrency": settings.worker_concurrency,
        "fetch_job_polling_interval": settings.worker_poll_seconds,
        "shutdown_graceful_timeout": shutdown_grace(settings),
        "delete_jobs": "successful",
        "update_heartbeat_interval": max(settings.worker_stalled_seconds / 4, 1.0),
        "stalled_worker_timeout": settings.worker_stalled_seconds,
        "additional_context": {
            "flask_app": flask_app,
            "stalled_seconds": settings.worker_stalled_seconds,
        },
    }


async def _run_procrastinate(flask_app: Any, settings: Settings, health: HealthServer) -> None:
    """procrastinate's worker until SIGTERM, started again whenever it stops on its own.

    procrastinate ends its worker when a side task fails (its LISTEN connection across a
    database restart) and lets a connection error of a fetch end it too; either way this
    process stays, answers 503 on /readyz meanwhile, and runs it again after 1, 2, 4 ... 30 s.
    SIGTERM cancels the run, which procrastinate turns into its graceful stop.
    """
    app = procrastinate_app(settings)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)

    async def beat() -> None:
        while True:
            health.beat()
            await asyncio.sleep(1.0)

    async def run_once() -> None:
        async with app.open_async():
            health.started = True
            await app.run_worker_async(
                **worker_options(settings, flask_app), install_signal_handlers=False
            )

    from .relay import relay

    beating = asyncio.create_task(beat())
    relaying = asyncio.create_task(relay(flask_app))
    delay = 1.0
    try:
        while not stopping.is_set():
            started = time.monotonic()
            run = asyncio.create_task(run_once())
            stop = asyncio.create_task(stopping.wait())
            await asyncio.wait({run, stop}, return_when=asyncio.FIRST_COMPLETED)
            if not run.done():  # SIGTERM: procrastinate's graceful stop, then out
                run.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await run
                break
            stop.cancel()
            health.started = False
            failure = run.exception()
            delay = 1.0 if time.monotonic() - started > 60 else delay
            log.warning("the worker stopped (%r); starting it again in %.0f s", failure, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=delay)
            delay = min(delay * 2, 30.0)
    finally:
        health.started = False
        beating.cancel()
        relaying.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await relaying
