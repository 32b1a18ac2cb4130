"""Load benchmarks: this project against the tutorial's design, side by side in one run.

Starts everything natively on 127.0.0.1: PostgreSQL and Redis (tests/servers.py), 3 replicas
of our app (`flipkart-api serve`, production settings) and 3 of the tutorial baseline
(bench/baseline: gunicorn, 4 sync workers), each set behind nginx (bench/nginx.conf.tmpl).
Each scenario runs wrk for a fixed time after a warm-up, `repeats` times, through nginx and
directly against one replica. Then the front door (bench/edge.py): nginx on HTTP and HTTPS
(bench/nginx-edge.conf.tmpl) -> Varnish with the production VCL -> 3 more replicas that
purge it: cached detail, list and search against the tutorial's GET / of the same run, TLS
against plain HTTP (and a handshake's cost), the hit ratio of a Zipf read mix with 1% admin
price writes (and stale reads), and orders and admin writes with the purges and without
(interleaved). Then: the app-server comparison, resources, and latency against catalog size
(bench/scaling.py). Figures are medians with min-max; every ratio
compares runs of this same process. Writes bench/results/<date>[-quick].json, .md and PNGs.

    .venv/bin/python -m bench.harness            # full run, about 20 minutes
    .venv/bin/python -m bench.harness --quick    # under 3 minutes, keeps the harness from rotting

Every process started here is stopped by PID at the end, also on failure.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import resource
import shutil
import statistics
import tempfile
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from tests import servers

from bench import edge, load, metrics_cost, outbox_cost, report, scaling, stack

REPLICAS = 3
HOT_SET = 1_000
ADMIN = {"email": "bench-admin@example.in", "password": "bench-admin-password-1"}
# The front door's read mix: Zipf exponent over product ids, share of writes (admin price
# PATCHes) and of list/search pages among the requests.
ZIPF_S = 1.0
WRITE_SHARE = 0.01
LIST_SHARE = 0.10


@dataclass(frozen=True)
class Profile:
    """How long, how often, how big."""

    duration: int
    warmup: int
    repeats: int
    connections: int
    products: int
    catalog_sizes: tuple[int, ...]
    cold_starts: int
    # The front door: warm-up before each of its timed loads (its cache is primed first), and
    # for the read mix, whose warm-up is the cache filling up as traffic fills it.
    edge_warmup: int = 0
    mix_warmup: int = 2
    # The outbox's delivery lag: seconds of orders at outbox_cost.RATE a second.
    outbox_lag: int = 30


PROFILES = {
    "quick": Profile(
        1, 1, 1, 32, 2_000, (2_000, 4_000), 1, edge_warmup=0, mix_warmup=2, outbox_lag=8
    ),
    "full": Profile(8, 2, 3, 64, 10_000, (10_000, 100_000, 1_000_000), 3, 2, 10),
}


@dataclass(frozen=True)
class Scenario:
    """One load: which stack, a path or a Lua script (with its arguments)."""

    name: str
    stack: str  # "ours" or "baseline"
    path: str = "/"
    script: str | None = None
    args: tuple[str, ...] = ()


# What the cached front-door scenarios read (load.SCRIPTS hot_detail, filtered_list, search).
CATEGORIES = (
    "mobiles",
    "laptops",
    "men",
    "women",
    "kitchen-appliances",
    "audio",
    "cameras",
    "furniture",
    "electronics",
    "fashion",
)
TERMS = (
    "phone",
    "samsung",
    "bluetooth",
    "cotton",
    "laptop",
    "shoes",
    "watch",
    "camera",
    "headphones",
    "saree",
    "wireless",
    "samsung%205g",
    "steel",
    "kurta",
)
PRIMED = [
    *(f"/api/v1/products/{n}" for n in range(1, HOT_SET + 1)),
    *(
        f"/api/v1/products?category={c}&sort={s}"
        for c in CATEGORIES
        for s in ("price", "-price", "newest", "rating")
    ),
    *(f"/api/v1/products?q={t}" for t in TERMS),
]


def scenarios(token: str) -> list[Scenario]:
    """What is measured through nginx and against one replica; ratios pair some of them."""
    return [
        Scenario("tutorial GET / (baseline)", "baseline"),
        Scenario("tutorial GET / (ours)", "ours"),
        Scenario("cached product detail, hot set of 1,000", "ours", script="hot_detail"),
        Scenario("cached filtered list", "ours", script="filtered_list", args=("0", "same")),
        Scenario("uncached filtered list", "ours", script="filtered_list", args=("0", "vary")),
        Scenario("cached search", "ours", script="search", args=("0", "same")),
        Scenario("uncached search", "ours", script="search", args=("0", "vary")),
        Scenario("POST /api/v1/orders", "ours", script="orders", args=(str(HOT_SET), token)),
        Scenario("GET /health (baseline)", "baseline", "/health"),
        Scenario("GET /health (ours)", "ours", "/health"),
    ]


def measure(url: str, profile: Profile, workdir: Path, sc: Scenario) -> dict[str, Any]:
    """Warm up, then `repeats` timed runs; medians with min-max."""
    load.run(url, profile.warmup, profile.connections, workdir, sc.script, sc.args)
    runs = [
        load.run(url, profile.duration, profile.connections, workdir, sc.script, sc.args)
        for _ in range(profile.repeats)
    ]
    return load.summarise(runs)


def _post(url: str, body: dict[str, str]) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 - 127.0.0.1
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        result: dict[str, Any] = json.loads(response.read())
        return result


def admin_token(base: str) -> str:
    """A bearer token for the admin `flipkart-api create-admin` made."""
    token: str = _post(f"{base}/api/v1/auth/token", ADMIN)["access_token"]
    return token


def customer_token(base: str) -> str:
    """Register a customer and return a bearer token."""
    credentials = {"email": "bench@example.in", "password": "bench-password-1"}
    _post(f"{base}/api/v1/auth/register", credentials | {"name": "Bench"})
    token: str = _post(f"{base}/api/v1/auth/token", credentials)["access_token"]
    return token


def stock_snapshot(engine: sa.Engine) -> dict[int, int]:
    """product id -> stock + units sold in live orders (must stay constant)."""
    sql = sa.text(
        "SELECT p.id, p.stock + COALESCE(SUM(l.quantity) FILTER "
        "(WHERE o.status <> 'cancelled'), 0) FROM products p "
        "LEFT JOIN order_items l ON l.product_id = p.id LEFT JOIN orders o ON o.id = l.order_id "
        "WHERE p.id <= :n GROUP BY p.id"
    )
    with engine.connect() as conn:
        return {row[0]: row[1] for row in conn.execute(sql, {"n": HOT_SET})}


def resources(procs: stack.Procs) -> dict[str, Any]:
    """RSS per worker and per replica (our replicas: the processes `serve` started)."""
    replicas = [p for p in procs if p.args == [stack.CLI, "serve"]][:REPLICAS]
    per_replica, rss, pss = [], [], []
    for proc in replicas:
        tree = [stack.memory_mb(p) for p in stack.tree_pids(proc.pid)]
        per_replica.append(sum(r for r, _ in tree))
        rss += [r for r, _ in tree[1:]]  # the workers; tree[0] is the server's main process
        pss += [p for _, p in tree[1:]]
    return {
        "rss_per_worker_mb": round(statistics.median(rss), 1),
        "rss_per_worker_max_mb": round(max(rss), 1),
        "pss_per_worker_mb": round(statistics.median(pss), 1),
        "rss_per_replica_mb": round(statistics.median(per_replica), 1),
        "workers_per_replica": len(rss) // max(len(replicas), 1),
    }


def cold_starts(env: dict[str, str], count: int) -> list[float]:
    """Seconds from `flipkart-api serve` to /health answering 200, for fresh replicas."""
    times = []
    for _ in range(count):
        with stack.processes() as procs:
            port = stack.serve_ours(procs, env)
            times.append(round(stack.wait_ok(f"http://127.0.0.1:{port}/health"), 2))
    return times


def server_comparison(
    procs: stack.Procs, env: dict[str, str], profile: Profile, workdir: Path, granian: int
) -> list[dict[str, Any]]:
    """Our app on one replica under each app server: the same requests, directly."""
    ports = {"granian": granian}
    for name in ("gunicorn-gthread", "gunicorn-sync"):
        ports[name] = stack.serve_ours(procs, env, name)
        stack.wait_ok(f"http://127.0.0.1:{ports[name]}/health")
    rows = []
    for sc in (
        Scenario("cached product detail", "ours", script="hot_detail"),
        Scenario("cached search", "ours", script="search", args=("0", "same")),
        Scenario("GET /health", "ours", "/health"),
    ):
        for server, port in ports.items():
            figures = measure(f"http://127.0.0.1:{port}", profile, workdir, sc)
            rows.append({"scenario": sc.name, "server": server, **figures})
            report.progress(f"{server}: {sc.name}", figures)
    return rows


# -- the front door: nginx (HTTP + HTTPS) -> Varnish (production VCL) -> 3 replicas --------
def _cpu(groups: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds so far per group of processes; `wrk`: our waited-for children."""
    out = {name: edge.cpu_seconds(pids) for name, pids in groups.items()}
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    out["wrk"] = usage.ru_utime + usage.ru_stime
    out["host"] = edge.host_busy_seconds()  # every process on the machine, ours included
    return out


def _per_request(
    before: dict[str, float], after: dict[str, float], requests: float
) -> dict[str, float]:
    """CPU ms per request by group; `other`: the host's busy time none of ours explains."""
    ms = {name: 1000 * (after[name] - before[name]) / max(requests, 1) for name in after}
    ms["other"] = ms.pop("host") - sum(ms.values())
    return {name: round(value, 4) for name, value in ms.items()}


def measure_edge(
    url: str,
    profile: Profile,
    workdir: Path,
    sc: Scenario,
    groups: dict[str, list[int]],
    connections: int | None = None,
    headers: tuple[str, ...] = (),
) -> dict[str, Any]:
    """`measure`, with the CPU each process group spent per request in the timed runs."""
    conns = connections or profile.connections
    if profile.edge_warmup:
        load.run(url, profile.edge_warmup, conns, workdir, sc.script, sc.args, headers)
    before = _cpu(groups)
    runs = [
        load.run(url, profile.duration, conns, workdir, sc.script, sc.args, headers)
        for _ in range(profile.repeats)
    ]
    after = _cpu(groups)
    figures = load.summarise(runs)
    figures["cpu_ms_per_request"] = _per_request(before, after, sum(r["requests"] for r in runs))
    return figures


def _interleaved(
    doors: dict[str, edge.FrontDoor],
    groups: dict[str, dict[str, list[int]]],
    profile: Profile,
    workdir: Path,
    sc: Scenario,
) -> dict[str, dict[str, Any]]:
    """The same load on each door in turn (A B, B A, ...), so drift hits both alike."""
    for door in doors.values():
        load.run(
            door.url() + sc.path, profile.warmup, profile.connections, workdir, sc.script, sc.args
        )
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in doors}
    cpu: dict[str, dict[str, float]] = {name: {} for name in doors}
    names = list(doors)
    for i in range(max(2, profile.repeats + 1)):
        for name in names if i % 2 == 0 else names[::-1]:
            url = doors[name].url() + sc.path
            before = _cpu(groups[name])
            runs[name].append(
                load.run(url, profile.duration, profile.connections, workdir, sc.script, sc.args)
            )
            after = _cpu(groups[name])
            for key in after:
                cpu[name][key] = cpu[name].get(key, 0.0) + after[key] - before[key]
    out = {}
    for name, r in runs.items():
        out[name] = load.summarise(r)
        zero = dict.fromkeys(cpu[name], 0.0)
        out[name]["cpu_ms_per_request"] = _per_request(
            zero, cpu[name], sum(x["requests"] for x in r)
        )
    return out


def zipf_mix(door: edge.FrontDoor, profile: Profile, workdir: Path, token: str) -> dict[str, Any]:
    """Hit ratio on the storefront mix (wrk's X-Edge counts and varnishstat), stale reads."""
    sc = Scenario(
        "Zipf read mix with 1% price writes",
        "ours",
        script="zipf_mix",
        args=(
            str(profile.products),
            token,
            str(ZIPF_S),
            str(WRITE_SHARE),
            str(LIST_SHARE),
            str(edge.CHECKED),
        ),
    )
    url = door.url()
    # The warm-up is the same mix (the cache fills as traffic fills it), longer than the
    # others: the tail of a Zipf mix takes a while to be seen once.
    load.run(url, profile.mix_warmup, profile.connections, workdir, sc.script, sc.args)
    before = edge.varnishstat(door.varnish)
    checker = edge.StaleChecker(door, token)
    checker.start()
    try:
        runs = [
            load.run(url, profile.duration, profile.connections, workdir, sc.script, sc.args)
            for _ in range(profile.repeats)
        ]
    finally:
        stale = checker.stop()
    after = edge.varnishstat(door.varnish)
    figures = load.summarise(runs)
    counts = {
        k: sum(r.get(k, 0.0) for r in runs)
        for k in (
            "detail_hits",
            "detail_misses",
            "list_hits",
            "list_misses",
            "writes",
            "write_errors",
        )
    }
    reads = sum(counts[k] for k in ("detail_hits", "detail_misses", "list_hits", "list_misses"))
    hits = counts["detail_hits"] + counts["list_hits"]

    def ratio(h: float, m: float) -> float:
        return round(h / (h + m), 4) if h + m else float("nan")

    seconds = profile.duration * profile.repeats
    return {
        "scenario": sc.name,
        "products": profile.products,
        "zipf_s": ZIPF_S,
        "write_share": WRITE_SHARE,
        "list_share": LIST_SHARE,
        **figures,
        "client": counts
        | {
            "reads": reads,
            "hit_ratio": ratio(hits, reads - hits),
            "detail_hit_ratio": ratio(counts["detail_hits"], counts["detail_misses"]),
            "list_hit_ratio": ratio(counts["list_hits"], counts["list_misses"]),
            "write_share_measured": round(counts["writes"] / max(reads + counts["writes"], 1), 4),
            "writes_per_s": round(counts["writes"] / seconds, 1),
        },
        "varnishstat": edge.hit_ratio(before, after),
        "stale": stale,
    }


@dataclass(frozen=True)
class ReplicaSet:
    """Replicas of our app: their ports and main PIDs; `varnish_port`: where they purge."""

    ports: list[int]
    mains: list[int]
    varnish_port: int = 0

    @property
    def pids(self) -> list[int]:
        """The main processes and their workers."""
        return [pid for main in self.mains for pid in stack.tree_pids(main)]


def serve_purging(procs: stack.Procs, env: dict[str, str]) -> ReplicaSet:
    """REPLICAS replicas that purge a Varnish yet to start (EDGE_PURGE_URLS set)."""
    varnish_port = servers.free_port()
    purging_env = env | {
        "EDGE_PURGE_URLS": f"http://127.0.0.1:{varnish_port}",
        "PROXY_HOPS": "2",  # nginx, then Varnish
    }
    first = len(procs)
    ports = [stack.serve_ours(procs, purging_env) for _ in range(REPLICAS)]
    return ReplicaSet(ports, [p.pid for p in procs[first:]], varnish_port)


def front_door(
    procs: stack.Procs,
    profile: Profile,
    workdir: Path,
    purging: ReplicaSet,
    plain: ReplicaSet,
    customer: str,
) -> dict[str, Any]:
    """Every front-door scenario. `purging` serves the door; `plain` (EDGE_PURGE_URLS unset)
    is the B side of the writes' A/B, behind a Varnish and nginx of its own."""
    doc: dict[str, Any] = {"replicas_per_door": REPLICAS, "rows": []}
    with contextlib.ExitStack() as stops:
        cert = edge.make_cert(workdir)
        replica_pids, plain_pids = purging.pids, plain.pids
        # Both at once: most of a start is varnishd compiling the VCL.
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            purging_door = pool.submit(
                edge.start_front_door,
                procs, stops, workdir, "purging", purging.ports, cert, purging.varnish_port,
            )  # fmt: skip
            plain_door = pool.submit(
                edge.start_front_door, procs, stops, workdir, "plain", plain.ports, cert
            )
            doors = {"with purges": purging_door.result(), "without purges": plain_door.result()}
        door = doors["with purges"]
        doc["negotiated"] = edge.negotiated(door)
        groups = door.pids | {"replicas": replica_pids}
        ab_groups = {
            "with purges": groups,
            "without purges": doors["without purges"].pids | {"replicas": plain_pids},
        }
        token = admin_token(door.url(https=False))
        # "Cached": every URL the read scenarios ask for is in Varnish before they start.
        doc["primed"] = edge.prime(door, PRIMED)
        cases = [
            ("cached product detail, hot set of 1,000", "hot_detail", (), "https", ()),
            ("cached product detail, hot set of 1,000", "hot_detail", (), "http", ()),
            ("cached filtered list", "filtered_list", ("0", "same"), "https", ()),
            ("cached search", "search", ("0", "same"), "https", ()),
            (
                "cached product detail, new connection each",
                "hot_detail",
                (),
                "https",
                ("Connection: close",),
            ),
            (
                "cached product detail, new connection each",
                "hot_detail",
                (),
                "http",
                ("Connection: close",),
            ),
        ]
        for name, script, args, scheme, headers in cases:
            sc = Scenario(name, "ours", script=script, args=args)
            url = door.url(https=scheme == "https")
            # New connections: fewer clients, so the run does not run out of local ports.
            conns = min(16, profile.connections) if headers else None
            figures = measure_edge(url, profile, workdir, sc, groups, conns, headers)
            row = {"scenario": name, "via": f"front door {scheme}", **figures}
            doc["rows"].append(row)
            report.progress(f"{name} [front door {scheme}]", figures)
        doc["handshake"] = edge.handshakes(door, max(1, profile.duration))
        doc["mix"] = zipf_mix(door, profile, workdir, token)
        report.progress_mix(doc["mix"])
        doc["ab"] = []
        for label, sc in (
            (
                "POST /api/v1/orders",
                Scenario("orders", "ours", script="orders", args=(str(HOT_SET), customer)),
            ),
            (
                "admin PATCH /api/v1/products/{id}",
                Scenario("admin", "ours", script="admin_patch", args=(str(HOT_SET), token)),
            ),
        ):
            sides = _interleaved(doors, ab_groups, profile, workdir, sc)
            doc["ab"].append({"scenario": label, **sides})
            for side, figures in sides.items():
                report.progress(f"{label} [{side}]", figures)
        doc["purge_cost"] = edge.purge_cost(door)  # last: it empties the list pages
        doc["varnish_purging"] = edge.varnishstat(door.varnish)
    return doc


def main() -> None:
    """Set up both stacks, run everything, write the results."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    mode = "quick" if parser.parse_args().quick else "full"
    profile = PROFILES[mode]
    edge.preflight()
    workdir = Path(tempfile.mkdtemp(prefix="flipkart-bench-"))
    # Durable like production: an order's commit waits for its WAL flush.
    pg, redis_server = servers.start_postgres(durable=True), servers.start_redis()
    document: dict[str, Any] = {"mode": mode, "profile": asdict(profile)}
    document["image"] = report.image_figures()
    try:
        url = pg.create_database("bench")
        env = stack.production_env(url, redis_server.url(0), workdir)
        stack.cli(env, "migrate")
        stack.cli(env, "seed", "--products", str(profile.products))
        stack.cli(
            env | {"ADMIN_PASSWORD": ADMIN["password"]}, "create-admin", "--email", ADMIN["email"]
        )
        engine = sa.create_engine(url)
        with engine.begin() as conn:  # enough stock that orders/s measures orders, not 409s
            conn.execute(
                sa.text("UPDATE products SET stock = 1000000 WHERE id <= :n"), {"n": HOT_SET}
            )
        with stack.processes() as procs:
            ports = {
                "ours": [stack.serve_ours(procs, env) for _ in range(REPLICAS)],
                "baseline": [
                    stack.serve_baseline(procs, env, url, redis_server.url(1))
                    for _ in range(REPLICAS)
                ],
            }
            plain = ReplicaSet(ports["ours"], [p.pid for p in procs[:REPLICAS]])
            purging = serve_purging(procs, env)  # the front door's, started alongside
            for port in ports["ours"] + ports["baseline"] + purging.ports:
                stack.wait_ok(f"http://127.0.0.1:{port}/health")
            document["resources_idle"] = resources(procs)
            # "ours" is nginx as shipped (deploy/nginx/default.conf: no upstream keep-alive);
            # the keep-alive variant is measured for the cached detail read as well.
            fronts = {
                "ours": stack.start_nginx(procs, workdir, "ours", ports["ours"], keepalive=False),
                "ours-keepalive": stack.start_nginx(
                    procs, workdir, "ours-keepalive", ports["ours"], keepalive=True
                ),
                "baseline": stack.start_nginx(
                    procs, workdir, "baseline", ports["baseline"], keepalive=False
                ),
            }
            token = customer_token(f"http://127.0.0.1:{fronts['ours']}")
            before = stock_snapshot(engine)
            results = []
            for sc in scenarios(token):
                targets = {"nginx": fronts[sc.stack], "direct": ports[sc.stack][0]}
                if sc.name.startswith("cached product detail"):
                    targets["nginx with upstream keep-alive"] = fronts["ours-keepalive"]
                for via, port in targets.items():
                    figures = measure(f"http://127.0.0.1:{port}{sc.path}", profile, workdir, sc)
                    results.append({"scenario": sc.name, "stack": sc.stack, "via": via, **figures})
                    report.progress(f"{sc.name} [{via}]", figures)
            document["edge"] = front_door(procs, profile, workdir, purging, plain, token)
            document["metrics"] = metrics_cost.run(
                procs, env, profile.duration, profile.repeats, profile.connections, workdir
            )
            # Its own database, replicas and worker, all stopped before it returns.
            document["outbox"] = outbox_cost.run(
                env, profile.duration, profile.repeats, profile.connections, profile.outbox_lag,
                workdir,
            )  # fmt: skip
            after = stock_snapshot(engine)
            document["orders_conservation"] = {
                "products": len(before),
                "stock_plus_sold_unchanged": before == after,
                "negative_stock": _negative_stock(engine),
            }
            document["resources_after_load"] = resources(procs)
            document["results"] = results
            document["servers"] = server_comparison(procs, env, profile, workdir, ports["ours"][0])
        document["cold_start_s"] = cold_starts(env, profile.cold_starts)
        engine.dispose()
        document["scaling"] = scaling.run(workdir, profile.catalog_sizes, profile)
    finally:
        pg.stop()
        redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    report.write(document)


def _negative_stock(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(sa.text("SELECT count(*) FROM products WHERE stock < 0")) or 0)


if __name__ == "__main__":
    main()
