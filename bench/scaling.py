"""Uncached latency against catalog size: detail, filtered list and search on PostgreSQL.

One replica whose REDIS_URL points at a closed port, so every read goes to the database
(X-Cache: BYPASS): what a cache miss costs at 10k, 100k and 1M products, with 10 clients.
The catalog grows in place (seeding is incremental), and is ANALYZEd at each size.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from tests import servers

from bench import load, report, stack

if TYPE_CHECKING:
    from bench.harness import Profile

CLIENTS = 10
READS = (
    ("detail", "/", "any_detail"),
    ("filtered list", "/", "filtered_list"),
    ("search", "/", "search"),
)


def run(workdir: Path, sizes: tuple[int, ...], profile: Profile) -> list[dict[str, Any]]:
    """Figures per (size, read), on a cluster of its own (reads only: no fsync needed)."""
    pg = servers.start_postgres()
    url = pg.create_database("scale")
    closed = f"redis://127.0.0.1:{servers.free_port()}/0"
    env = stack.production_env(url, closed, workdir)
    stack.cli(env, "migrate")
    engine = sa.create_engine(url)
    rows = []
    try:
        for size in sizes:
            started = time.monotonic()
            stack.cli(env, "seed", "--products", str(size))
            with engine.connect() as conn:
                conn.execute(sa.text("ANALYZE"))
                conn.commit()
            seeded = round(time.monotonic() - started, 1)
            with stack.processes() as procs:
                port = stack.serve_ours(procs, env)
                stack.wait_ok(f"http://127.0.0.1:{port}/health")
                for name, path, script in READS:
                    args = (str(size), "vary")
                    target = f"http://127.0.0.1:{port}{path}"
                    load.run(target, profile.warmup, CLIENTS, workdir, script, args)
                    runs = [
                        load.run(target, profile.duration, CLIENTS, workdir, script, args)
                        for _ in range(profile.repeats)
                    ]
                    figures = load.summarise(runs)
                    rows.append({"products": size, "read": name, "seed_s": seeded, **figures})
                    report.progress(f"{size:,} products: uncached {name}", figures)
    finally:
        engine.dispose()
        pg.stop()
    return rows
