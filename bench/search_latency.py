"""Search, suggestion and facet latency, uncached, against catalog size (issue: search).

PostgreSQL at 10,000 and 1,000,000 products with 10 clients (the targets) and with one (what
an answer costs alone, with no queue on 2 CPUs), and SQLite at 100,000 with one,
each through one replica whose REDIS_URL points at a closed port (X-Cache: BYPASS: every
answer is computed). The queries are the judged set's (bench/search_judgments.json: words,
typos, prefixes, syntax, nonsense), in turn; suggestions ask for a prefix of each (as
typed, 2 to 8 letters); facets ask for all five counts. Writes bench/results/
search-latency-<date>.json and .md. Bounded: fixed sizes, durations and repeats.

    .venv/bin/python -m bench.search_latency [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
import urllib.parse
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import sqlalchemy as sa
from tests import servers

from bench import load, stack

RESULTS = Path(__file__).parent / "results"
JUDGMENTS = Path(__file__).parent / "search_judgments.json"
FACETS = "brand,category,price,rating,in_stock"
LUA = """
local paths = {%s}
local n = 0
init = function(args) n = math.random(#paths) end
request = function()
  n = n %% #paths + 1
  return wrk.format("GET", paths[n])
end
"""


def _queries() -> list[str]:
    return [row["q"] for row in json.loads(JUDGMENTS.read_text())["queries"]]


def _paths() -> dict[str, list[str]]:
    """The URL paths of each read, one per judged query."""
    qs = _queries()
    enc = urllib.parse.quote
    cuts = [q[: 2 + i % 7] for i, q in enumerate(qs)]
    return {
        "search": [f"/api/v1/products?q={enc(q)}" for q in qs],
        "suggest": [f"/api/v1/search/suggest?q={enc(c)}" for c in cuts if c.strip()],
        "search + facets": [f"/api/v1/products?q={enc(q)}&facets={FACETS}" for q in qs],
    }


def _script(workdir: Path, name: str, paths: list[str]) -> str:
    """A wrk script cycling through `paths` (registered in load.SCRIPTS under `name`)."""
    quoted = ", ".join('"' + p.replace("\\", "\\\\").replace('"', '\\"') + '"' for p in paths)
    key = "search_latency_" + name.replace(" + ", "_")
    load.SCRIPTS[key] = LUA % quoted
    return key


def _measure(
    env: dict[str, str], workdir: Path, reads: list[str], clients: int, profile: dict[str, int]
) -> list[dict[str, Any]]:
    rows = []
    paths = _paths()
    with stack.processes() as procs:
        port = stack.serve_ours(procs, env)
        stack.wait_ok(f"http://127.0.0.1:{port}/health")
        for read in reads:
            script = _script(workdir, read, paths[read])
            target = f"http://127.0.0.1:{port}"
            load.run(target, profile["warmup"], clients, workdir, script)
            runs = [
                load.run(target, profile["seconds"], clients, workdir, script)
                for _ in range(profile["repeats"])
            ]
            figures = load.summarise(runs)
            rows.append({"read": read, "clients": clients, **figures})
            p50, p99 = figures["p50_ms"]["median"], figures["p99_ms"]["median"]
            print(f"  {read:16} p50 {p50:7.1f} ms  p99 {p99:7.1f} ms", flush=True)
    return rows


def postgres(
    workdir: Path, sizes: tuple[int, ...], profile: dict[str, int], big_url: str | None = None
) -> list[Any]:
    """Every read at each size, the catalog grown in place (seed settles it at each size).

    big_url: a database already seeded to the largest size (`flipkart-api seed`), measured
    as it is; seeding 1,000,000 products takes about 6 minutes here.
    """
    pg = servers.start_postgres()
    url = pg.create_database("search_latency")
    env = stack.production_env(url, f"redis://127.0.0.1:{servers.free_port()}/0", workdir)
    stack.cli(env, "migrate")
    engine = sa.create_engine(url)
    out = []
    try:
        for size in sizes:
            started = time.monotonic()
            if big_url and size == max(sizes):
                env = stack.production_env(big_url, env["REDIS_URL"], workdir)
                check = sa.create_engine(big_url)
                with check.connect() as conn:
                    held = conn.execute(sa.text("SELECT count(*) FROM products")).scalar()
                check.dispose()
                if held != size:
                    raise SystemExit(f"--big-url holds {held} products, not {size}")
            else:
                stack.cli(env, "seed", "--products", str(size))
            seeded = round(time.monotonic() - started, 1)
            print(f"postgresql, {size:,} products (seeded in {seeded} s)", flush=True)
            for clients in (10, 1):  # the targets'; one alone: each answer's own cost
                for row in _measure(env, workdir, list(_paths()), clients, profile):
                    out.append({"backend": "postgresql", "products": size, "seed_s": seeded, **row})
    finally:
        engine.dispose()
        pg.stop()
    return out


def sqlite(workdir: Path, size: int, profile: dict[str, int]) -> list[Any]:
    """Search with one client on the embedded default's database."""
    env = stack.production_env(
        f"sqlite:///{workdir}/latency.sqlite3",
        f"redis://127.0.0.1:{servers.free_port()}/0",
        workdir,
    )
    stack.cli(env, "migrate")
    started = time.monotonic()
    stack.cli(env, "seed", "--products", str(size))
    seeded = round(time.monotonic() - started, 1)
    print(f"sqlite, {size:,} products (seeded in {seeded} s)", flush=True)
    rows = _measure(env, workdir, ["search", "suggest"], 1, profile)
    return [{"backend": "sqlite", "products": size, "seed_s": seeded, **r} for r in rows]


def _p(rows: list[Any], backend: str, size: int, read: str, pct: str) -> float:
    clients = 10 if backend == "postgresql" else 1  # the targets'
    for r in rows:
        if (r["backend"], r["products"], r["read"], r["clients"]) == (backend, size, read, clients):
            return float(r[f"{pct}_ms"]["median"])
    return float("nan")


def targets(
    rows: list[Any], small: int, big: int, lite: int
) -> list[tuple[str, float, str, float]]:
    """(target, measured, op, bound) for the issue's latency targets."""
    pg, lt = "postgresql", "sqlite"
    out = [
        (f"PostgreSQL {big:,}: search p99 ms", _p(rows, pg, big, "search", "p99"), "<", 50),
        (f"PostgreSQL {big:,}: suggest p99 ms", _p(rows, pg, big, "suggest", "p99"), "<", 20),
        (
            f"PostgreSQL {big:,}: search + facets p99 ms",
            _p(rows, pg, big, "search + facets", "p99"),
            "<",
            100,
        ),
        (
            f"SQLite {lite:,}, one client: search p99 ms",
            _p(rows, lt, lite, "search", "p99"),
            "<",
            50,
        ),
    ]
    for read in ("search", "suggest", "search + facets"):
        ratio = _p(rows, pg, big, read, "p50") / _p(rows, pg, small, read, "p50")
        out.append((f"PostgreSQL {read} p50, {big:,} / {small:,}", round(ratio, 2), "<=", 1.5))
    return out


def write(rows: list[Any], goals: list[Any], quick: bool, seconds: float) -> Path:
    stamp = dt.date.today().isoformat() + ("-quick" if quick else "")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"search-latency-{stamp}.json").write_text(
        json.dumps({"rows": rows, "targets": goals}, indent=2)
    )
    ok = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b}
    lines = [
        f"# Search latency, uncached ({'quick, ' if quick else ''}2 CPUs, {seconds:.0f} s)",
        "",
        "One replica (granian, the production settings) with Redis unreachable, so nothing is "
        "cached; wrk cycles through the judged set's queries (search), a 2-8 letter prefix of "
        "each (suggest) and the same queries with all five facets. PostgreSQL is measured "
        "with 10 clients (the targets') and with one (each answer's own cost, no queue for "
        "the 2 CPUs). Medians of the runs, min-max in brackets.",
        "",
        "| target | measured | bound | met |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {name} | {value} | {op} {bound} | "
        + ("yes" if ok[op](value, bound) else f"**no**: {value / bound:.2f}x the bound")
        + " |"
        for name, value, op, bound in goals
    ]
    lines += ["", "| backend | products | read | clients | req/s | p50 ms | p99 ms | non-2xx |",
              "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        keys = ("rps", "p50_ms", "p99_ms")
        fig = {k: f"{r[k]['median']} ({r[k]['min']}-{r[k]['max']})" for k in keys}
        lines.append(
            f"| {r['backend']} | {r['products']:,} | {r['read']} | {r['clients']} | {fig['rps']} "
            f"| {fig['p50_ms']} | {fig['p99_ms']} | {r['non_2xx']['median']} |"
        )
    path = RESULTS / f"search-latency-{stamp}.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="10k/100k and 20k SQLite, short runs")
    parser.add_argument("--big-url", help="a PostgreSQL database already seeded to the big size")
    args = parser.parse_args()
    quick = args.quick
    small, big, lite = (10_000, 100_000, 20_000) if quick else (10_000, 1_000_000, 100_000)
    profile = {"warmup": 2, "seconds": 4, "repeats": 1} if quick else {
        "warmup": 3, "seconds": 10, "repeats": 3}  # fmt: skip
    started = time.monotonic()
    with TemporaryDirectory(prefix="flipkart-search-latency-") as tmp:
        workdir = Path(tmp)
        rows = sqlite(workdir, lite, profile) + postgres(
            workdir, (small, big), profile, args.big_url
        )
    goals = targets(rows, small, big, lite)
    path = write(rows, goals, quick, time.monotonic() - started)
    print(path.read_text())


if __name__ == "__main__":
    main()
