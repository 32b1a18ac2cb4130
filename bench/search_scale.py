"""Search and list latency against catalog size on a real PostgreSQL (issue: scale to 1M).

Starts a throwaway PostgreSQL on 127.0.0.1, migrates, seeds up to the largest size, and at
each size runs EXPLAIN (ANALYZE, BUFFERS) for the product-list queries the API issues,
recording the plan's index use and the median of repeated executions. Writes
bench/results/search-scale-<date>.json and .md. Bounded: sizes and repeats are fixed.

    .venv/bin/python -m bench.search_scale --sizes 10000,100000,1000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import secrets
import statistics
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from tests import servers

from flipkart_api import create_app
from flipkart_api.catalog.listing import build_query
from flipkart_api.catalog.pages import descendant_ids, search_matcher
from flipkart_api.catalog.schemas import ProductQuery
from flipkart_api.catalog.seed import seed_catalog
from flipkart_api.db import session
from flipkart_api.migrate import upgrade
from flipkart_api.settings import load_settings

RESULTS = Path(__file__).parent / "results"
QUERIES = {
    "search 'samsung 5g'": {"q": "samsung 5g"},
    "search 'bluetooth' (common)": {"q": "bluetooth"},
    "search 'cotton' in fashion": {"q": "cotton", "category": "fashion"},
    "list newest": {},
    "list mobiles by price": {"category": "mobiles", "sort": "price"},
    "list in-stock brand": {"brand": "boat", "in_stock": "true"},
}
REPEATS = 15


def _sql(app: Any, params: dict[str, str]) -> str:
    """The exact SQL the API runs for these query parameters, with literals inlined."""
    with app.app_context():
        query = ProductQuery.model_validate(params)
        ids = descendant_ids(session(), query.category) if query.category else None
        found = search_matcher(session(), query.q, "postgresql") if query.q else None
        steps = build_query(query, "postgresql", ids, found=found)  # relevance: the first tier
        first = next(iter(steps))
        return str(first.compile(session().get_bind(), compile_kwargs={"literal_binds": True}))


def measure(app: Any, url: str, size: int, force_index: bool = False) -> list[dict[str, Any]]:
    """EXPLAIN each query once and time REPEATS executions (optionally with seq scans off)."""
    engine = create_engine(url)
    rows = []
    with engine.connect() as conn:
        conn.execute(text("ANALYZE products"))
        conn.execute(text(f"SET enable_seqscan = {'off' if force_index else 'on'}"))
        for name, params in QUERIES.items():
            if force_index and "q" not in params:
                continue
            sql = _sql(app, params)
            plan = "\n".join(r[0] for r in conn.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + sql)))
            timings = []
            for _ in range(REPEATS):
                started = time.perf_counter()
                conn.execute(text(sql)).all()
                timings.append((time.perf_counter() - started) * 1000)
            rows.append(
                {
                    "size": size,
                    "query": name + (" [seqscan off]" if force_index else ""),
                    "median_ms": round(statistics.median(timings), 2),
                    "min_ms": round(min(timings), 2),
                    "max_ms": round(max(timings), 2),
                    "seq_scan_on_products": "Seq Scan on products" in plan,
                    "indexes": sorted(
                        {w for w in plan.replace("(", " ").split() if w.startswith(("ix_", "pk_"))}
                    ),
                    "plan": plan,
                }
            )
    engine.dispose()
    return rows


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def main() -> None:
    """Seed each size in turn (seeding is incremental) and measure."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000,1000000")
    sizes = sorted(int(s) for s in parser.parse_args().sizes.split(","))
    pg = servers.start_postgres()
    try:
        url = pg.create_database("scale")
        upgrade(url)
        app = create_app(
            load_settings(app_env="test", database_url=url, secret_key=secrets.token_urlsafe(48))
        )
        results: list[dict[str, Any]] = []
        for size in sizes:
            started = time.perf_counter()
            with app.app_context():
                seed_catalog(session(), size)
            print(f"seeded {size:,} in {time.perf_counter() - started:.0f}s", flush=True)
            new = measure(app, url, size) + measure(app, url, size, force_index=True)
            results += new
            for row in new:
                ms, indexes = row["median_ms"], ", ".join(row["indexes"])
                print(f"  {row['query']:40} {ms:8.2f} ms  {indexes}")
    finally:
        pg.stop()
    stamp = dt.date.today().isoformat()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"search-scale-{stamp}.json").write_text(json.dumps(results, indent=2))
    lines = [
        "| products | query | median ms (min-max) | indexes used | seq scan |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['size']:,} | {r['query']} | {r['median_ms']} ({r['min_ms']}-{r['max_ms']}) "
        f"| {', '.join(r['indexes'])} | {_yes(r['seq_scan_on_products'])} |"
        for r in results
    ]
    (RESULTS / f"search-scale-{stamp}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
