"""Event-delivery drills: the worker killed, a receiver or SMTP away, PostgreSQL restarted,
two workers sharing the queue. Real processes on 127.0.0.1, each drill bounded in time.

`make test-faults`. The drills have a stack of their own (events_stack.py), so they do not
depend on the other drills' order; each creates its own endpoint and checks only the events
committed during it. Promise: every committed event reaches its receiver at least once, a
repeat only after a failure and under the same webhook-id (or Message-ID), in order per
order. Figures go to build/faults.json next to the other drills', recorded before the
asserts so that a failed drill still leaves them; worker logs go to build/faults-logs/.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from .. import servers
from ..receivers import Inbox, Mail, WebhookReceiver
from .conftest import REPORT
from .events_stack import (
    EventStack,
    delivered_count,
    start_event_stack,
    stop_event_stack,
    tally,
    wait_until,
)

pytestmark = pytest.mark.timeout(150)

COLLECTED_AT = time.time()  # a build/faults.json written after this is from this same run
KILL_ORDERS = 40
RECEIVER_DOWN_SECONDS = 60.0
RECEIVER_RETRY_MAX = 5.0  # DELIVERY_RETRY_MAX_SECONDS while the receiver is down
SMTP_DOWN_SECONDS = 20.0
POSTGRES_DOWN_SECONDS = 5.0
TWO_WORKER_ORDERS = 100
# How long "everything delivered" may take once the fault is over: a retry comes at most
# the retry cap after the last, a stalled job is queued again within WORKER_STALLED_SECONDS
# plus the 5 s period of retry_stalled; generous for a busy 2-core machine.
DELIVERED_WITHIN = 30.0


class WorkerExited(AssertionError):
    """The worker process ended by itself: it was meant to ride the fault out."""


@pytest.fixture(scope="module")
def report(report: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """conftest's report, keeping the figures the other drills of this run wrote before."""
    if REPORT.is_file() and REPORT.stat().st_mtime >= COLLECTED_AT:
        report.update(json.loads(REPORT.read_text())["drills"])
    return report


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EventStack]:
    """The event drills' PostgreSQL, Redis and app; the logs kept in build/faults-logs."""
    workdir = tmp_path_factory.mktemp("event-drills")
    try:
        events = start_event_stack(workdir)
    except servers.ServerUnavailable as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but a real server is unavailable: {exc}")
        pytest.skip(f"REAL SERVER UNAVAILABLE, event drills skipped: {exc}")
    try:
        yield events
    finally:
        events.stop_workers()
        events.keep_logs(REPORT.parent / "faults-logs")
        stop_event_stack(events)


@pytest.fixture
def drill(stack: EventStack) -> Iterator[EventStack]:
    """The stack for one drill; afterwards its workers stopped and its endpoints disabled."""
    yield stack
    stack.stop_workers()
    stack.disable_endpoints()


def _all_arrived(receiver: WebhookReceiver, events: list[Any]) -> bool:
    """Every one of `events` reached the receiver at least once."""
    return not tally(receiver, events)["missing"]


def _failed_attempts(drill: EventStack, pk: int) -> Any:
    """Failed attempts (n) and the deliveries they were for (deliveries), events after `pk`."""
    return drill.sql(
        "SELECT count(*) AS n, count(DISTINCT d.id) AS deliveries FROM delivery_attempts a"
        " JOIN deliveries d ON d.id = a.delivery_id WHERE NOT a.ok AND d.event_id > :pk",
        pk=pk,
    )[0]


def test_worker_sigkilled_mid_delivery_loses_nothing(
    drill: EventStack, report: dict[str, dict[str, Any]]
) -> None:
    """SIGKILL while webhooks are in flight: a new worker delivers every event; a repeat only
    of what was in flight, under the same webhook-id.
    """
    started = time.monotonic()
    receiver = WebhookReceiver(delay=2.0)  # slow, so the kill finds requests on their way
    try:
        drill.subscribe(receiver.url)
        before = drill.last_event()
        first = drill.worker("kill-1")
        drill.orders(KILL_ORDERS)
        wait_until(lambda: receiver.in_flight >= 2, 20)
        in_flight = receiver.in_flight
        first.kill()
        killed = time.monotonic()
        received_at_kill = len(receiver.received)
        receiver.delay = 0.0  # quick again: from here what is measured is the worker
        drill.worker("kill-2")
        ready = time.monotonic()
        events = drill.events_after(before)
        after_ready = wait_until(lambda: _all_arrived(receiver, events), DELIVERED_WITHIN)
        recovery = round(time.monotonic() - killed, 2)
        # What the dead worker had on its way may have arrived, but is not recorded: its jobs
        # go back to the queue once its heartbeat is WORKER_STALLED_SECONDS old, and are sent
        # again (the duplicates). Done means every delivery recorded delivered.
        settled = wait_until(lambda: not _pending(drill, before), DELIVERED_WITHIN)
        time.sleep(1)  # a late repeat would show here
    finally:
        receiver.close()
    figures = tally(receiver, events) | {
        "orders": KILL_ORDERS,
        "in_flight_at_kill": in_flight,
        "received_before_kill": received_at_kill,
        "new_worker_ready_s": round(ready - killed, 2),
        "all_delivered_after_new_worker_s": after_ready,
        "recovery_s": recovery if after_ready is not None else None,  # SIGKILL -> all arrived
        "all_recorded_after_new_worker_s": settled,
        "deliveries": drill.deliveries_after(before),
        "drill_s": round(time.monotonic() - started, 1),
    }
    report["events 1 worker SIGKILL mid-delivery"] = figures
    assert in_flight >= 2, figures
    assert figures["events"] == KILL_ORDERS, figures
    assert figures["missing"] == 0, figures
    assert figures["unexpected"] == 0, figures
    assert figures["webhook_id_not_body_id"] == 0, figures
    assert settled is not None, figures  # no delivery left pending
    # Only what was on its way when the worker died may come twice.
    assert figures["duplicates"] <= in_flight, figures


def _pending(drill: EventStack, before: int) -> bool:
    """Is any delivery of the events after `before` still pending?"""
    return any(key.split()[1] == "pending" for key in drill.deliveries_after(before))


def test_receiver_down_60s_gets_everything_once_in_order(
    drill: EventStack, report: dict[str, dict[str, Any]]
) -> None:
    """Nothing listening for 60 s, retries every <= 5 s; then a receiver on that port gets
    every event once (none reached it while it was away), placed before confirmed per order.
    """
    started = time.monotonic()
    port = servers.free_port()
    drill.subscribe(f"http://127.0.0.1:{port}/hook")
    before = drill.last_event()
    worker = drill.worker(
        "receiver-down",
        DELIVERY_RETRY_MAX_SECONDS=str(RECEIVER_RETRY_MAX),
        DELIVERY_MAX_ATTEMPTS="100",  # the default 16, 5 s apart, would be dead by 60 s
    )
    order_ids = drill.orders(20)
    confirmed = order_ids[::2]
    for order_id in confirmed:
        drill.confirm(order_id)
    time.sleep(max(0.0, RECEIVER_DOWN_SECONDS - (time.monotonic() - started)))
    refused = _failed_attempts(drill, before)
    receiver = WebhookReceiver(port=port)
    try:
        up = time.monotonic()
        events = drill.events_after(before)
        recovery = wait_until(lambda: _all_arrived(receiver, events), DELIVERED_WITHIN)
        time.sleep(1)
    finally:
        receiver.close()
    arrival = {(b["type"], b["data"]["order"]["id"]): n for n, b in enumerate(receiver.bodies())}
    out_of_order = [
        oid
        for oid in confirmed
        if arrival.get(("order.placed", oid), -1) > arrival.get(("order.confirmed", oid), -1)
    ]
    figures = tally(receiver, events) | {
        "receiver_down_s": round(up - started, 1),
        "failed_attempts_while_down": refused.n,
        "deliveries_tried_while_down": refused.deliveries,
        "orders": len(order_ids),
        "confirmed_orders": len(confirmed),
        "out_of_order": len(out_of_order),
        "recovery_s": recovery,  # receiver listening -> every event arrived
        "deliveries": drill.deliveries_after(before),
        "drill_s": round(time.monotonic() - started, 1),
    }
    report["events 2 receiver down 60 s"] = figures
    if not worker.running:
        raise WorkerExited(worker.log()[-3000:])
    assert figures["events"] == len(order_ids) + len(confirmed), figures
    # Every order's first event was tried (its confirmed waits behind it), again and again.
    assert refused.deliveries == len(order_ids), figures
    assert refused.n >= 3 * len(order_ids), figures
    assert figures["missing"] == 0, figures
    assert figures["unexpected"] == 0, figures
    assert figures["duplicates"] == 0, figures
    assert out_of_order == [], figures
    # The next retry (the cap, +10% jitter), then each order's confirmed after its placed.
    assert recovery is not None, figures
    assert recovery <= 2 * RECEIVER_RETRY_MAX, figures


def test_smtp_down_then_every_email_once(
    drill: EventStack, report: dict[str, dict[str, Any]]
) -> None:
    """SMTP_URL names a port nothing listens on; ~20 s later aiosmtpd starts there: every
    order email arrives, each Message-ID once.
    """
    started = time.monotonic()
    port = servers.free_port()
    drill.disable_endpoints()  # emails only
    before = drill.last_event()
    worker = drill.worker(
        "smtp-down",
        SMTP_URL=f"smtp://127.0.0.1:{port}",
        DELIVERY_RETRY_MAX_SECONDS="2",  # so an email goes within ~2 s of SMTP's return
        DELIVERY_MAX_ATTEMPTS="100",
    )
    order_ids = drill.orders(15)
    confirmed = order_ids[::3]
    for order_id in confirmed:
        drill.confirm(order_id)
    time.sleep(max(0.0, SMTP_DOWN_SECONDS - (time.monotonic() - started)))
    failed = _failed_attempts(drill, before)
    inbox = Inbox()
    # Not receivers.start_smtp, which picks a port: it must come back where SMTP_URL points.
    controller = Controller(inbox, hostname="127.0.0.1", port=port, server_hostname="mx.test")
    controller.start()
    up = time.monotonic()
    events = drill.events_after(before)
    wanted = {f"<{e.event_id}.order-email@flipkart-api.invalid>" for e in events}
    try:
        recovery = wait_until(
            lambda: wanted <= {_message_id(m) for m in list(inbox.received)},
            DELIVERED_WITHIN,
        )
        time.sleep(1)
    finally:
        controller.stop()
    ids = Counter(_message_id(m) for m in inbox.received)
    figures = {
        "emails_expected": len(wanted),
        "emails_received": sum(ids.values()),
        "missing": len(wanted - set(ids)),
        "duplicates": sum(n - 1 for n in ids.values() if n > 1),
        "failed_attempts_while_down": failed.n,
        "emails_tried_while_down": failed.deliveries,
        "smtp_down_s": round(up - started, 1),
        "recovery_s": recovery,  # SMTP listening -> every email arrived
        "deliveries": drill.deliveries_after(before),
        "drill_s": round(time.monotonic() - started, 1),
    }
    report["events 3 smtp down 20 s"] = figures
    if not worker.running:
        raise WorkerExited(worker.log()[-3000:])
    assert len(wanted) == len(order_ids) + len(confirmed), figures
    # Every order's first email was tried (its confirmed waits behind it) while SMTP was away.
    assert failed.deliveries == len(order_ids), figures
    assert figures["missing"] == 0, figures
    assert figures["duplicates"] == 0, figures
    assert set(ids) == wanted, figures


def _message_id(mail: Mail) -> str:
    """The Message-ID as sent: a long one is folded, so the parsed value starts with a space."""
    return str(mail.message["Message-ID"]).strip()


def test_postgres_restart_worker_recovers_by_itself(
    drill: EventStack, report: dict[str, dict[str, Any]]
) -> None:
    """PostgreSQL down ~5 s while orders keep coming: the worker's /readyz goes 503 and back
    to 200, the process never exits, and every committed event is delivered.

    Should the worker exit, a replacement is started (what a supervisor would do) so the
    drill still shows whether anything committed was lost, then the exit fails the drill.
    """
    started = time.monotonic()
    receiver = WebhookReceiver()
    drill.subscribe(receiver.url)
    before = drill.last_event()
    worker = drill.worker("postgres-restart")
    readyz: list[tuple[float, int | None]] = []
    exited_at: list[float] = []
    accepted: list[int] = []
    refused = 0
    placing, probing = threading.Event(), threading.Event()

    def probe() -> None:
        while not probing.is_set():
            readyz.append((time.monotonic(), worker.probe("/readyz")))
            if not worker.running and not exited_at:
                exited_at.append(time.monotonic())
            probing.wait(0.2)

    def place() -> None:
        nonlocal refused
        for _ in range(400):  # bounded; ~0.1 s apart until the drill stops it
            if placing.is_set():
                return
            placed = drill.try_order()
            if placed is None:
                refused += 1
            else:
                accepted.append(placed)
            placing.wait(0.1)

    threads = [threading.Thread(target=f, daemon=True) for f in (probe, place)]
    replacement = None
    try:
        for thread in threads:
            thread.start()
        time.sleep(3)
        halting = time.monotonic()
        drill.pg.halt()
        time.sleep(POSTGRES_DOWN_SECONDS)
        drill.pg.restart()
        up = time.monotonic()
        ready_again = wait_until(lambda: any(t > up and s == 200 for t, s in readyz), 30)
        time.sleep(3)  # orders placed after the recovery too
        placing.set()
        threads[1].join(timeout=15)
        events = drill.events_after(before)
        delivered = wait_until(
            lambda: _all_arrived(receiver, events) or bool(exited_at), DELIVERED_WITHIN
        )
        if exited_at:
            # What a supervisor would do (restart: always): did the queue lose anything?
            replacement = drill.worker("postgres-restart-replacement")
            delivered = wait_until(lambda: _all_arrived(receiver, events), DELIVERED_WITHIN)
        time.sleep(1)
    finally:
        placing.set()
        probing.set()
        receiver.close()
    outage = [s for t, s in readyz if halting <= t <= up]
    log = worker.log().strip().splitlines()
    figures = (
        tally(receiver, events)
        | {
            "orders_accepted": len(accepted),
            "orders_refused": refused,
            "postgres_down_s": round(up - halting, 1),
            "readyz_in_outage": dict(Counter(str(s) for s in outage)),
            "readyz_200_again_s": ready_again,  # PostgreSQL accepting again -> /readyz 200
            "worker_exited_s": round(exited_at[0] - up, 1) if exited_at else None,  # since up
            "worker_exit_code": worker.process.poll() if worker.process else None,
            "worker_last_log_line": log[-1][:300] if exited_at and log else None,
            # Seconds to recover: /readyz 200 again, and the process still running.
            "recovery_s": None if exited_at else ready_again,
            "all_delivered_s": delivered,  # since the last order (by the replacement, if any)
            "delivered_by_replacement": replacement is not None,
            "deliveries": drill.deliveries_after(before),
            "drill_s": round(time.monotonic() - started, 1),
        }
    )
    report["events 4 postgres restarted"] = figures
    assert "503" in figures["readyz_in_outage"], figures
    assert refused > 0, figures  # some orders came while it was down
    assert figures["missing"] == 0, figures
    assert figures["unexpected"] == 0, figures
    assert figures["webhook_id_not_body_id"] == 0, figures
    placed_events = {e.subject for e in events if e.type == "order.placed"}
    assert {f"order:{oid}" for oid in accepted} <= placed_events, figures
    if exited_at:
        raise WorkerExited(f"the worker exited: {figures}\n" + "\n".join(log[-30:]))
    assert ready_again is not None, figures


def test_two_workers_deliver_each_event_exactly_once(
    drill: EventStack, report: dict[str, dict[str, Any]]
) -> None:
    """Two workers on one queue, a healthy receiver, 100 orders: no webhook-id twice."""
    started = time.monotonic()
    receiver = WebhookReceiver()
    try:
        drill.subscribe(receiver.url)
        before = drill.last_event()
        workers = [drill.worker("two-a"), drill.worker("two-b")]
        drill.orders(TWO_WORKER_ORDERS)
        events = drill.events_after(before)
        delivered = wait_until(lambda: _all_arrived(receiver, events), DELIVERED_WITHIN)
        time.sleep(1)
        split = [delivered_count(w.metrics()) for w in workers]
    finally:
        receiver.close()
    most = drill.sql(
        "SELECT coalesce(max(attempts), 0) AS n FROM deliveries WHERE event_id > :pk", pk=before
    )[0].n
    figures = tally(receiver, events) | {
        "orders": TWO_WORKER_ORDERS,
        "delivered_per_worker": split,
        "most_attempts_of_a_delivery": most,
        "all_delivered_s": delivered,  # since the last order was placed
        "deliveries": drill.deliveries_after(before),
        "drill_s": round(time.monotonic() - started, 1),
    }
    report["events 5 two workers"] = figures
    assert figures["events"] == TWO_WORKER_ORDERS, figures
    assert figures["missing"] == 0, figures
    assert figures["unexpected"] == 0, figures
    assert figures["duplicates"] == 0, figures  # no failure, so no retry, so no repeat
    assert most == 1, figures
    assert sum(split) == len(events), figures
