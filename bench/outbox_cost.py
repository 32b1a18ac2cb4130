"""What the outbox costs, and how late its webhooks arrive (the events issue's two targets).

1. Orders/s with events on and off: two replicas, the same but for EVENTS_ENABLED, place
   orders with wrk (load.SCRIPTS["orders"]) in turn A B, B A, ... so the machine's drift hits
   both alike. No endpoint is subscribed and no worker runs, so the difference is the write
   path alone: the outbox row and the procrastinate job deferred in the order's transaction.
   Target: on / off >= 0.90.
2. Delivery lag: one replica (events on), one `flipkart-api worker` (its defaults, but
   WEBHOOK_ALLOW_PRIVATE=true and its probes on 127.0.0.1), one endpoint for order.placed
   pointing at a receiver in this process. Orders go out open loop at RATE a second; lag is
   the receive time minus the body's `timestamp` (the event's created_at), both this
   machine's wall clock. Target: p99 < 1 s, and every order's event received.

Both run on a database of their own on the given server (bench_outbox), so the queue starts
empty and the harness's stock invariants never see these orders.

    .venv/bin/python -m bench.outbox_cost [--quick]   # alone; the full bench runs it too
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import subprocess
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from tests import servers

from flipkart_api.events.models import WebhookEndpoint
from flipkart_api.events.signing import new_secret

from . import edge, load, stack

PRODUCTS = 1_000
RATE = 100  # orders a second in the lag test (the target's)
EASY_RATE = 40  # and a rate these 2 cores can place and deliver at once, for comparison
SENDERS = 32  # threads (one keep-alive connection each) that share the schedule
GRACE_S = 10.0  # after the last order, how long its events may take to arrive
CUSTOMER = {"email": "outbox@example.in", "password": "outbox-password-1", "name": "Outbox"}
ADDRESS = {
    "name": "Bench",
    "line1": "1 MG Road",
    "city": "Bengaluru",
    "state": "Karnataka",
    "pincode": "560001",
    "phone": "9876543210",
}
COUNT_PLACED = sa.text("SELECT count(*) FROM outbox_events WHERE type = 'order.placed'")


class Receiver:
    """A webhook receiver on 127.0.0.1: answers 200 at once, keeps (receive time, body)."""

    def __init__(self) -> None:
        self.got: list[tuple[float, dict[str, Any]]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received = time.time()
                with receiver.lock:
                    receiver.got.append((received, json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def order_ids(self) -> set[int]:
        """The orders whose order.placed arrived so far."""
        with self.lock:
            return {body["data"]["order"]["id"] for _, body in self.got}

    def close(self) -> None:
        """Stop serving and free the port."""
        self.server.shutdown()
        self.server.server_close()


def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 - 127.0.0.1
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def customer_token(base: str) -> str:
    """A bearer token for this bench's customer (registered on first use)."""
    try:
        _post(f"{base}/api/v1/auth/register", CUSTOMER)
    except urllib.error.HTTPError as exc:  # 409: registered by an earlier part of the run
        if exc.code != 409:
            raise
    credentials = {"email": CUSTOMER["email"], "password": CUSTOMER["password"]}
    token: str = _post(f"{base}/api/v1/auth/token", credentials)["access_token"]
    return token


def own_database(env: dict[str, str]) -> dict[str, str]:
    """bench_outbox on env's server: migrated, PRODUCTS products with stock that lasts."""
    server = sa.make_url(env["DATABASE_URL"])
    admin = sa.create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text("CREATE DATABASE bench_outbox"))
    admin.dispose()
    url = server.set(database="bench_outbox").render_as_string(hide_password=False)
    env = env | {"DATABASE_URL": url}
    stack.cli(env, "migrate")
    stack.cli(env, "seed", "--products", str(PRODUCTS))
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # orders/s measures orders, not 409s (nor stock.low events)
        conn.execute(sa.text("UPDATE products SET stock = 10000000"))
    engine.dispose()
    return env


def throughput(
    env: dict[str, str], duration: int, repeats: int, connections: int, workdir: Path,
    engine: sa.Engine,
) -> dict[str, Any]:  # fmt: skip
    """Part 1: wrk's orders against the events-on and the events-off replica, interleaved."""
    with stack.processes() as procs:
        ports = {
            "on": stack.serve_ours(procs, env | {"EVENTS_ENABLED": "true"}),
            "off": stack.serve_ours(procs, env | {"EVENTS_ENABLED": "false"}),
        }
        for port in ports.values():
            stack.wait_ok(f"http://127.0.0.1:{port}/health")
        args = (str(PRODUCTS), customer_token(f"http://127.0.0.1:{ports['on']}"))
        with engine.connect() as conn:
            events_before = conn.scalar(COUNT_PLACED) or 0
        placed = {"on": 0.0, "off": 0.0}  # 201s each side answered, warm-ups included
        runs: dict[str, list[dict[str, float]]] = {"on": [], "off": []}
        for i in range(max(2, repeats + 1) + 1):  # round 0 is the warm-up of each
            for name in ("on", "off") if i % 2 == 0 else ("off", "on"):
                url = f"http://127.0.0.1:{ports[name]}"
                result = load.run(
                    url,
                    min(duration, 2) if i == 0 else duration,
                    connections,
                    workdir,
                    "orders",
                    args,
                )
                placed[name] += result["requests"] - result["non_2xx"]
                if i:
                    runs[name].append(result)
        with engine.connect() as conn:
            events = (conn.scalar(COUNT_PLACED) or 0) - events_before
    on, off = load.summarise(runs["on"]), load.summarise(runs["off"])
    return {
        "on": on,
        "off": off,
        "ratio": round(on["ok_rps"]["median"] / off["ok_rps"]["median"], 3),
        # The off replica writes none; wrk leaves uncounted the orders still in flight when a
        # run stops, so the on replica's count is a little under the rows.
        "placed_events_written": events,
        "orders_counted": placed,
    }


def open_loop(base: str, token: str, seconds: float, rate: int = RATE) -> dict[str, Any]:
    """Orders at `rate` a second for `seconds`: slot i is due at start + i / rate, whatever
    the answers to earlier slots; SENDERS threads take the slots in turn."""
    path = "/api/v1/orders"
    port = int(base.rsplit(":", 1)[1])
    slots = iter(range(int(seconds * rate)))
    lock = threading.Lock()
    start = time.monotonic() + 0.1
    placed: list[int] = []
    latency_ms: list[float] = []
    late_ms: list[float] = []
    failures: list[str] = []

    def sender(thread: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while True:
            with lock:
                slot = next(slots, None)
            if slot is None:
                break
            due = start + slot / rate
            time.sleep(max(0.0, due - time.monotonic()))
            sent = time.monotonic()
            body = json.dumps(
                {
                    "items": [{"product_id": slot % PRODUCTS + 1, "quantity": 1}],
                    "shipping_address": ADDRESS,
                }
            )
            headers = {
                "Content-Type": "application/json",
                "Authorization": f"Bearer {token}",
                "Idempotency-Key": f"outbox-lag-{thread}-{slot}-{time.time_ns()}",
            }
            try:
                conn.request("POST", path, body, headers)
                response = conn.getresponse()
                answer = response.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()  # reconnects on the next request
                failures.append(repr(exc))
                continue
            with lock:
                late_ms.append((sent - due) * 1000)
                latency_ms.append((time.monotonic() - sent) * 1000)
                if response.status == 201:
                    placed.append(json.loads(answer)["id"])
                else:
                    failures.append(f"{response.status} {answer[:200]!r}")
        conn.close()

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(SENDERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    return {
        "placed": placed,
        "latency_ms": latency_ms,
        "late_ms": late_ms,
        "failures": failures,
        "elapsed_s": elapsed,
    }


def _spread(values: list[float]) -> dict[str, float | None]:
    """p50, p95, p99 and max, rounded (None when there are no values)."""
    ordered = sorted(values)

    def at(q: float) -> float | None:
        return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))], 2) if ordered else None

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": at(1.0)}


STAGES = sa.text(
    "SELECT e.created_at, e.dispatched_at, d.delivered_at FROM outbox_events e"
    " JOIN deliveries d ON d.event_id = e.id WHERE e.type = 'order.placed' AND e.id > :after"
)


def _arrived(receiver: Receiver, wanted: set[int]) -> float:
    """Wait (at most GRACE_S) until every wanted order's event arrived; the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < GRACE_S and not wanted <= receiver.order_ids():
        time.sleep(0.05)
    return time.monotonic() - started


def _stages(engine: sa.Engine, after: int) -> dict[str, dict[str, float | None]]:
    """From the database: event to fanned out, and to delivery recorded (ms)."""
    with engine.connect() as conn:
        rows = conn.execute(STAGES, {"after": after}).all()
    return {
        "fanned_out_ms": _spread([(d - c).total_seconds() * 1000 for c, d, _ in rows if d]),
        "delivered_recorded_ms": _spread([(d - c).total_seconds() * 1000 for c, _, d in rows if d]),
    }


def lag(
    env: dict[str, str], seconds: float, workdir: Path, engine: sa.Engine, rate: int = RATE
) -> dict[str, Any]:
    """Part 2: `rate` orders a second through one replica; their webhooks' delivery lag."""
    receiver = Receiver()
    with engine.begin() as conn:
        # Part 1 (or the run before) left thousands of events with no worker to take them:
        # this run's would queue behind them, and measure the backlog, not the lag.
        conn.execute(sa.text("TRUNCATE outbox_events, procrastinate_jobs CASCADE"))
        conn.execute(sa.text("TRUNCATE webhook_endpoints CASCADE"))
        conn.execute(
            sa.insert(WebhookEndpoint).values(
                url=receiver.url, event_types=["order.placed"], secret=new_secret()
            )
        )
    health = servers.free_port()
    worker_env = env | {
        "EVENTS_ENABLED": "true",
        "WEBHOOK_ALLOW_PRIVATE": "true",
        "WORKER_HEALTH_HOST": "127.0.0.1",
        "WORKER_HEALTH_PORT": str(health),
    }
    try:
        with stack.processes() as procs, (workdir / "outbox-worker.log").open("wb") as log:
            port = stack.serve_ours(procs, env | {"EVENTS_ENABLED": "true"})
            procs.append(
                subprocess.Popen(
                    [stack.CLI, "worker"], env=worker_env, stdout=log, stderr=subprocess.STDOUT
                )
            )
            base = f"http://127.0.0.1:{port}"
            stack.wait_ok(f"{base}/health")
            stack.wait_ok(f"http://127.0.0.1:{health}/readyz")
            token = customer_token(base)
            # Warm-up: connections, the worker's first jobs; its events are all in first.
            _arrived(receiver, set(open_loop(base, token, 1.0)["placed"]))
            with receiver.lock:
                receiver.got.clear()
            with engine.connect() as conn:
                after = conn.scalar(sa.text("SELECT coalesce(max(id), 0) FROM outbox_events"))
            pids = {"replica": stack.tree_pids(procs[0].pid), "worker": [procs[1].pid]}
            cpu = {name: edge.cpu_seconds(p) for name, p in pids.items()}
            busy, wall = edge.host_busy_seconds(), time.monotonic()
            sent = open_loop(base, token, seconds, rate)
            wanted = set(sent["placed"])
            waited = _arrived(receiver, wanted)
            wall, busy = time.monotonic() - wall, edge.host_busy_seconds() - busy
            cpu = {name: edge.cpu_seconds(p) - cpu[name] for name, p in pids.items()}
        with receiver.lock:
            got = [(t, b) for t, b in receiver.got if b["data"]["order"]["id"] in wanted]
    finally:
        receiver.close()
    lags = [
        (t - dt.datetime.fromisoformat(b["timestamp"].replace("Z", "+00:00")).timestamp()) * 1000
        for t, b in got
    ]
    ids = [b["id"] for _, b in got]
    orders = max(len(wanted), 1)
    return {
        "seconds": seconds,
        "rate_asked": rate,
        "rate_achieved": round(len(sent["latency_ms"]) / sent["elapsed_s"], 1),
        "sent": len(sent["placed"]),
        "failed": len(sent["failures"]),
        "failures": sent["failures"][:5],
        "received": len(got),
        "duplicates": len(ids) - len(set(ids)),
        "missing": len(wanted - {b["data"]["order"]["id"] for _, b in got}),
        "waited_after_last_order_s": round(waited, 2),
        "lag_ms": _spread(lags),
        **_stages(engine, after),
        "order_latency_ms": _spread(sent["latency_ms"]),
        "send_late_ms": _spread(sent["late_ms"]),
        # The replica's per order placed; the worker's per webhook delivered (it may lag).
        "cpu_ms_per_order": {
            "replica": round(1000 * cpu["replica"] / orders, 2),
            "worker": round(1000 * cpu["worker"] / max(len(got), 1), 2),
        },
        "host_busy_share": round(busy / (wall * (os.cpu_count() or 1)), 3),
        "worker": "flipkart-api worker, defaults (WORKER_CONCURRENCY 4, WORKER_POLL_SECONDS 1, "
        "the relay looking every 0.1 s) but WEBHOOK_ALLOW_PRIVATE=true and its probes on "
        "127.0.0.1",
    }


def run(
    env: dict[str, str], duration: int, repeats: int, connections: int, lag_seconds: float,
    workdir: Path,
) -> dict[str, Any]:  # fmt: skip
    """Both parts on a database of their own; every process started here is stopped here."""
    env = own_database(env)
    engine = sa.create_engine(env["DATABASE_URL"])
    try:
        figures: dict[str, Any] = {
            "throughput": throughput(env, duration, repeats, connections, workdir, engine)
        }
        figures["lag"] = lag(env, lag_seconds, workdir, engine)
        figures["lag_easy"] = lag(env, lag_seconds, workdir, engine, EASY_RATE)
    finally:
        engine.dispose()
    figures["connections"], figures["duration"] = connections, duration
    return figures


def targets(figures: dict[str, Any]) -> list[tuple[str, float, str, float, str]]:
    """The issue's targets: (name, value, op, bound, why it can be missed)."""
    t, lag_ = figures["throughput"], figures["lag"]
    on, off = t["on"], t["off"]
    cpu = lag_["cpu_ms_per_order"]
    behind = (
        f"{lag_['rate_achieved']} orders/s achieved of {lag_['rate_asked']} asked; event to "
        f"fanned out p99 {lag_['fanned_out_ms']['p99']} ms, to delivery recorded p99 "
        f"{lag_['delivered_recorded_ms']['p99']} ms; the replica spent {cpu['replica']} ms of "
        f"CPU per order and the worker {cpu['worker']} per webhook (a procrastinate job: fetch, "
        f"read, POST, record, finish), on {os.cpu_count()} cores that were "
        f"{100 * lag_['host_busy_share']:.0f}% busy: placing and delivering {lag_['rate_asked']}"
        " orders/s needs more CPU than that"
    )
    p99 = lag_["lag_ms"]["p99"]
    return [
        (
            "orders/s, events on / off (one replica each, directly, no endpoint)",
            t["ratio"],
            ">=",
            0.90,
            f"{on['ok_rps']['median']:.0f} against {off['ok_rps']['median']:.0f} orders/s (p99 "
            f"{on['p99_ms']['median']:.0f} and {off['p99_ms']['median']:.0f} ms): the outbox "
            "INSERT in every order's transaction (its JSON payload built, one more row and "
            "index entry in the WAL)",
        ),
        (
            f"webhook delivery lag p99 at {lag_['rate_asked']} orders/s (ms)",
            p99 if p99 is not None else float("inf"),
            "<",
            1000.0,
            behind,
        ),
        (
            f"order.placed webhooks missing {lag_['waited_after_last_order_s']} s after the last",
            lag_["missing"],
            "<=",
            0,
            behind,
        ),
    ]


def markdown(figures: dict[str, Any]) -> list[str]:
    """The report's section."""
    t, lag_ = figures["throughput"], figures["lag"]

    def row(name: str, r: dict[str, Any]) -> str:
        return (
            f"| {name} | {r['ok_rps']['median']:,.0f} ({r['ok_rps']['min']:,.0f}-"
            f"{r['ok_rps']['max']:,.0f}) | {r['p50_ms']['median']:.1f} | "
            f"{r['p99_ms']['median']:.1f} | {r['non_2xx']['median']:.0f} |"
        )

    return [
        "",
        "## The outbox: orders with events on and off, and webhook delivery lag",
        "",
        f"`POST /api/v1/orders` (wrk, {figures['connections']} connections, "
        f"{figures['duration']} s runs, interleaved) on two replicas that differ only in "
        "EVENTS_ENABLED; no endpoint subscribed and no worker running, so the difference is "
        "the write path (the outbox row). order.placed rows written: "
        f"{t['placed_events_written']:,}, for {t['orders_counted']['on']:,.0f} orders wrk counted"
        f" on the events-on replica and {t['orders_counted']['off']:,.0f} on the other.",
        "",
        "| replica | orders/s (201s) | p50 ms | p99 ms | non-2xx |",
        "|---|---|---|---|---|",
        row("events on", t["on"]),
        row("events off", t["off"]),
        "",
        f"Ratio on/off: {t['ratio']}.",
        "",
        *_lag_lines(lag_),
        *(_lag_lines(figures["lag_easy"]) if "lag_easy" in figures else []),
    ]


def _lag_lines(lag_: dict[str, Any]) -> list[str]:
    """One delivery-lag run: how it was made, its spreads, what arrived, the CPU it took."""
    spread = lag_["lag_ms"]
    cpu = lag_["cpu_ms_per_order"]
    return [
        "",
        f"Delivery lag: orders open loop at {lag_['rate_asked']}/s for {lag_['seconds']:g} s "
        f"(achieved {lag_['rate_achieved']}/s; {lag_['sent']} placed, {lag_['failed']} failed) "
        f"on one replica; {lag_['worker']}; one endpoint for order.placed on a receiver in the "
        "bench's process. Lag: receive time minus the body's `timestamp`.",
        "",
        "| measure | p50 | p95 | p99 | max |",
        "|---|---|---|---|---|",
        *(
            f"| {name} | {s['p50']} | {s['p95']} | {s['p99']} | {s['max']} |"
            for name, s in (
                ("delivery lag (ms)", spread),
                ("event to fanned out (ms, database)", lag_["fanned_out_ms"]),
                ("event to delivery recorded (ms, database)", lag_["delivered_recorded_ms"]),
                ("order latency (ms)", lag_["order_latency_ms"]),
                ("order sent after its slot (ms)", lag_["send_late_ms"]),
            )
        ),
        "",
        f"Received {lag_['received']} of {lag_['sent']} ({lag_['duplicates']} duplicates); "
        f"missing after {lag_['waited_after_last_order_s']} s: {lag_['missing']}. CPU ms: "
        f"replica {cpu['replica']} per order, worker {cpu['worker']} per webhook delivered; "
        f"the host was {100 * lag_['host_busy_share']:.0f}% busy (every process on it, the "
        "bench's and others' included).",
    ]


def write(figures: dict[str, Any], quick: bool) -> Path:
    """bench/results/outbox-<date>[-quick].json and .md; returns the .md's path."""
    from . import report  # here, not above: report imports this module for the harness

    stamp = dt.date.today().isoformat() + ("-quick" if quick else "")
    rows = [report._target(*row) for row in targets(figures)]
    figures = {"mode": "quick" if quick else "full", **figures, "targets": rows}
    report.RESULTS.mkdir(parents=True, exist_ok=True)
    (report.RESULTS / f"outbox-{stamp}.json").write_text(json.dumps(figures, indent=2) + "\n")
    lines = [
        f"# The outbox's cost ({figures['mode']}, {figures['cpus']} CPUs, "
        f"{figures['wall_s']:.0f} s)",
        "",
        "| target | measured | bound | met | missed by, and why |",
        "|---|---|---|---|---|",
        *(
            f"| {r['target']} | {r['value']} | {r['bound']} | {'yes' if r['met'] else '**no**'} "
            f"| {report._why(r)} |"
            for r in rows
        ),
        *markdown(figures),
    ]
    path = report.RESULTS / f"outbox-{stamp}.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> None:
    """Run it alone against a fresh durable PostgreSQL and Redis; write and print the figures."""
    import argparse
    import shutil
    import tempfile

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    quick = parser.parse_args().quick
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="flipkart-outbox-bench-"))
    # Durable like production (and the harness): an order's commit waits for its WAL flush.
    pg, redis_server = servers.start_postgres(durable=True), servers.start_redis()
    try:
        env = stack.production_env(pg.url(), redis_server.url(0), workdir)
        figures = run(env, 2 if quick else 8, 1 if quick else 3, 64, 8 if quick else 30, workdir)
    finally:
        pg.stop()
        redis_server.stop()
    figures["cpus"], figures["wall_s"] = os.cpu_count(), round(time.monotonic() - started, 1)
    path = write(figures, quick)
    shutil.rmtree(workdir, ignore_errors=True)
    print(path.read_text())
    t, spread = figures["throughput"], figures["lag"]["lag_ms"]
    print(
        f"orders/s on {t['on']['ok_rps']['median']:.0f}, off {t['off']['ok_rps']['median']:.0f}"
        f" (ratio {t['ratio']}); lag p50 {spread['p50']} ms, p99 {spread['p99']} ms, max "
        f"{spread['max']} ms; missing {figures['lag']['missing']}; {figures['wall_s']:.0f} s"
    )


if __name__ == "__main__":
    main()
