"""The job queue on PostgreSQL (procrastinate): the tasks, their retries, deferring them.

A `deliver` job makes one attempt at one delivery (attempts.py). The jobs are deferred by
the relay (fanout.py) on its own psycopg connection, in the transaction that creates the
deliveries, so a job exists exactly when its delivery does. Each carries a procrastinate
lock, the delivery's lock key (receiver and subject): jobs sharing a lock run one at a
time in the order they were deferred, a retried job included, which is what keeps the
events of one order in order for each receiver (docs/reliability.md).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import procrastinate
from procrastinate import Blueprint, JobContext, RetryDecision
from procrastinate.jobs import Job
from procrastinate.retry import BaseRetryStrategy
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

NAMESPACE = "flipkart"
QUEUE = "events"
# A job that failed for a reason of its own making (the database away mid-job) is tried
# again after 1, 2, 4 ... 60 s, for about a day; a delivery's own schedule is in backoff.py.
UNEXPECTED_MAX_ATTEMPTS = 1500
UNEXPECTED_MAX_DELAY = 60


class RetryLater(Exception):
    """Raised by a job that wants to run again in `delay` seconds (a failed delivery)."""

    def __init__(self, delay: float) -> None:
        super().__init__(f"retry in {delay:.1f} s")
        self.delay = delay


class Backoff(BaseRetryStrategy):
    """RetryLater: when it says; anything else: soon, growing to a minute, for about a day."""

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        """Procrastinate asks after each failure: retry when, or give up (None)."""
        if isinstance(exception, RetryLater):
            return RetryDecision(retry_in={"milliseconds": int(exception.delay * 1000)})
        if job.attempts >= UNEXPECTED_MAX_ATTEMPTS:
            return None
        delay = min(2 ** min(job.attempts, 6), UNEXPECTED_MAX_DELAY)
        log.warning(
            "job %s (%s) failed: %r; again in %d s", job.id, job.task_name, exception, delay
        )
        return RetryDecision(retry_in={"seconds": delay})


def _flask_app(context: JobContext) -> Any:
    return context.additional_context["flask_app"]


def blueprint() -> Blueprint:
    """The tasks, on a blueprint of their own for each app.

    A new one per app: procrastinate renames a blueprint's periodic tasks when an app adds
    them (namespace:name), so one blueprint shared by two apps would be prefixed twice.
    """
    tasks = Blueprint()

    @tasks.task(name="deliver", queue=QUEUE, pass_context=True, retry=Backoff())
    def deliver(context: JobContext, delivery_id: int) -> None:
        """One attempt at one delivery; a failure that has attempts left runs again later."""
        from .. import db
        from .attempts import attempt

        flask_app = _flask_app(context)
        with flask_app.app_context():
            outcome = attempt(db.session(), flask_app.config["SETTINGS"], delivery_id)
        if outcome.retry_in is not None:
            raise RetryLater(outcome.retry_in)

    @tasks.periodic(cron="* * * * *")
    @tasks.task(name="housekeeping", queue=QUEUE, pass_context=True, queueing_lock="housekeeping")
    def housekeeping(context: JobContext, timestamp: int) -> None:
        """Every minute, on one worker: expired keys and tokens, unconfirmed orders, old rows."""
        from .. import db
        from .housekeeping import run_housekeeping

        flask_app = _flask_app(context)
        with flask_app.app_context():
            run_housekeeping(db.session(), flask_app.config["SETTINGS"])

    @tasks.periodic(cron="* * * * * */5")
    @tasks.task(name="retry_stalled", queue=QUEUE, pass_context=True, queueing_lock="retry_stalled")
    async def retry_stalled(context: JobContext, timestamp: int) -> None:
        """Jobs of a worker that stopped beating (SIGKILL, a lost host) go back to the queue."""
        seconds: float = context.additional_context["stalled_seconds"]
        manager = context.app.job_manager
        for job in await manager.get_stalled_jobs(seconds_since_heartbeat=seconds):
            log.warning(
                "job %s (%s) was running on a worker that died; queued again", job.id, job.task_name
            )
            await manager.retry_job(job)

    return tasks


@functools.cache
def _deferrer() -> procrastinate.App:
    """An app that only defers, by task name, on a connection it is given (it opens no pool)."""
    return procrastinate.App(connector=procrastinate.SyncPsycopgConnector())


def _driver_connection(sess: Session) -> Any:
    """The psycopg connection under the session's current transaction."""
    return sess.connection().connection.driver_connection


def defer_deliveries(sess: Session, deliveries: list[tuple[int, str]]) -> None:
    """In the session's transaction, in the given order: a job per (delivery id, lock key)."""
    deferrer = _deferrer()
    connection = _driver_connection(sess)
    jobs = [
        deferrer.configure_task(
            f"{NAMESPACE}:deliver", queue=QUEUE, lock=lock_key, connection=connection
        ).make_new_job(delivery_id=delivery_id)
        for delivery_id, lock_key in deliveries
    ]
    deferrer.job_manager.batch_defer_jobs(jobs=jobs, connection=connection)
