"""Search quality: the judged queries (bench/search_judgments.json) against the real API.

Per backend it seeds the demo catalog into a fresh database (a SQLite file in a temp dir, or
a throwaway PostgreSQL), migrates it, asks `GET /api/v1/products?q=...&limit=10` for every
judged query through Flask's test client, and grades what came back with the judgments'
rules materialized against the seeded products (read back from the database: sku, name,
brand, category and its parent). Writes bench/results/search-quality-<UTC date>[-quick]
.json and .md. Exits 0 whether the targets are met or not; `targets()` says which.

    .venv/bin/python -m bench.search_quality [--quick] [--products N] [--backend both]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import secrets
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import Flask
from sqlalchemy import text
from tests import servers

import flipkart_api
from flipkart_api import create_app
from flipkart_api.catalog.seed import seed_catalog
from flipkart_api.db import session
from flipkart_api.migrate import upgrade
from flipkart_api.settings import load_settings

from . import search_judgments as judgments
from . import search_metrics as metrics
from .search_report import markdown

# The checkout whose src/ is imported: the engine measured, wherever the bench itself is.
ENGINE = Path(flipkart_api.__file__).resolve().parents[2]
BACKENDS = ("sqlite", "postgresql")
PRODUCTS, QUICK_PRODUCTS = 5000, 2000
WORST = 15
# Plain SQL on the tables, not the catalog's ORM: the yardstick should not move with the
# code it measures.
CATALOG = text(
    "SELECT p.sku, p.name, p.brand, c.slug, top.slug FROM products p "
    "JOIN categories c ON c.id = p.category_id "
    "LEFT JOIN categories top ON top.id = c.parent_id"
)


@contextlib.contextmanager
def _database(backend: str) -> Iterator[str]:
    """A fresh, empty database's URL; whatever was started for it is stopped afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="flipkart-search-quality-") as tmp:
            yield f"sqlite:///{tmp}/catalog.sqlite3"
        return
    pg = servers.start_postgres()
    try:
        yield pg.create_database("search_quality")
    finally:
        pg.stop()


def _catalog(app: Flask) -> judgments.Catalog:
    """Every seeded product as the judgments see it, read back from the database."""
    with app.app_context():
        rows = session().execute(CATALOG).all()
    return judgments.Catalog(
        judgments.Item(sku, name, brand, frozenset({leaf, top or leaf}))
        for sku, name, brand, leaf, top in rows
    )


def _run(app: Flask, queries: list[dict[str, Any]], catalog: judgments.Catalog) -> list[Any]:
    """One row of figures per query, with what came back and a product that was wanted."""
    client = app.test_client()
    rows = []
    for query in queries:
        judged = judgments.materialize(query, catalog)
        started = time.perf_counter()
        answer = client.get("/api/v1/products?" + urlencode({"q": query["q"], "limit": 10}))
        ms = (time.perf_counter() - started) * 1000
        found = answer.get_json()["items"] if answer.status_code == 200 else []
        row = metrics.score(query, judged, [p["sku"] for p in found])
        row["ms"] = round(ms, 1)
        row["top"] = [[p["sku"], p["name"]] for p in found]  # names kept for the worst only
        if answer.status_code != 200:
            row["status"] = answer.status_code
            row["error"] = answer.get_data(as_text=True)[:300]
        if judged:
            best = max(judged.values())
            sku = min(s for s, g in judged.items() if g == best)
            row["wanted_example"] = [sku, catalog.items[sku].name, best]
        rows.append(row)
    return rows


def evaluate(backend: str, products: int) -> dict[str, Any]:
    """Seed `products` demo products on a fresh `backend` database and grade every query."""
    queries = judgments.load()
    judgments.check(queries)  # fails loudly on a broken judgments file, before any server
    started = time.monotonic()
    with _database(backend) as url:
        upgrade(url)
        settings = load_settings(
            app_env="test",
            database_url=url,
            secret_key=secrets.token_urlsafe(48),
            ratelimit_enabled=False,
        )
        app = create_app(settings)
        try:
            with app.app_context():
                seed_catalog(session(), products)
            catalog = _catalog(app)
            seeded = time.monotonic()
            rows = _run(app, queries, catalog)
        finally:
            app.extensions["db_engine"].dispose()
    answerable = [r for r in rows if r["relevant_in_catalog"]]
    # Among equals, a wrong page says more than an empty one.
    rank = sorted(answerable, key=lambda r: (r["ndcg"], r["recall"] or 0, not r["results"], r["q"]))
    worst = [dict(r) for r in rank[:WORST]]
    for row in rows:  # the worst keep names and an example; the rest the SKUs, on one line
        row["top"] = " ".join(sku for sku, _ in row["top"])
        row.pop("wanted_example", None)
    return {
        "backend": backend,
        "products": len(catalog.items),
        **metrics.summarize(rows),
        "ndcg_zero": sum(r["ndcg"] == 0 for r in answerable),
        "median_ms": round(statistics.median(r["ms"] for r in rows), 1),
        "seed_s": round(seeded - started, 1),
        "queries_s": round(time.monotonic() - seeded, 1),
        "worst": worst,
        "rows": rows,
    }


def targets(figures: dict[str, Any]) -> list[tuple[str, float, str, float, str]]:
    """The search targets per backend: (name, value, op, bound, why it can be missed).

    `figures` is main()'s (every backend under "backends") or one evaluate() result.
    """
    backends = figures.get("backends") or {figures["backend"]: figures}
    out = []
    for name, b in backends.items():
        kinds = sorted((v, k) for k, v in b["ndcg_by_kind"].items() if v is not None)
        weakest = ", ".join(f"{k} {v:.2f}" for v, k in kinds[:3])
        failed = f"; {len(b['failures'])} queries failed (non-200)" if b["failures"] else ""
        zero = b["zero_result_queries"]
        typo_rate = b["typo_top3_rate"] or 0.0
        out += [
            (
                f"nDCG@10, {name}",
                b["ndcg"] or 0.0,
                ">=",
                0.85,
                f"mean over {b['answerable']} queries; weakest kinds: {weakest}{failed}",
            ),
            (
                f"zero-result share of queries with a relevant product, {name}",
                b["zero_result_rate"] or 0.0,
                "<=",
                0.01,
                f"{len(zero)} of {b['answerable']} came back empty, e.g. "
                + ", ".join(repr(q) for q in zero[:6]),
            ),
            (
                f"typo queries with a grade-3 product in the top 3, {name}",
                typo_rate,
                ">=",
                0.90,
                f"{round(typo_rate * b['typo_queries'])} of {b['typo_queries']} typo queries",
            ),
        ]
    return out


def _revision() -> str:
    """The checked-out commit (and whether src/ differs from it): the engine measured."""

    def git(*args: str) -> str:
        command = ["git", "-C", str(ENGINE), *args]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    sha = git("rev-parse", "--short=12", "HEAD") or "unknown"
    return sha + (
        " with uncommitted changes in src/" if git("status", "--porcelain", "src") else ""
    )


def write(figures: dict[str, Any]) -> Path:
    """bench/results/search-quality-<UTC date>[-quick].json and .md; returns the .md's path."""
    from . import report  # the shared target rows (met, missed by how much)

    quick = figures["mode"] == "quick"
    stamp = dt.datetime.now(dt.UTC).date().isoformat() + ("-quick" if quick else "")
    rows = [report._target(*row) for row in targets(figures)]
    figures = {**figures, "targets": rows}
    report.RESULTS.mkdir(parents=True, exist_ok=True)
    base = report.RESULTS / f"search-quality-{stamp}"
    base.with_suffix(".json").write_text(json.dumps(figures, indent=1, ensure_ascii=False) + "\n")
    lines = markdown(figures, [(r, report._why(r)) for r in rows])
    base.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return base.with_suffix(".md")


def main() -> None:
    """Evaluate the chosen backends, write the report, print it; exit 0 either way."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_PRODUCTS:,} products")
    parser.add_argument("--products", type=int, help=f"catalog size (default {PRODUCTS:,})")
    parser.add_argument("--backend", choices=(*BACKENDS, "both"), default="both")
    args = parser.parse_args()
    products = args.products or (QUICK_PRODUCTS if args.quick else PRODUCTS)
    started = time.monotonic()
    chosen = BACKENDS if args.backend == "both" else (args.backend,)
    backends = {}
    for backend in chosen:
        backends[backend] = evaluate(backend, products)
        print(f"{backend}: nDCG@10 {backends[backend]['ndcg']}", flush=True)
    queries = judgments.load()
    figures = {
        "mode": "quick" if args.quick else "full",
        "products": products,
        "queries": len(queries),
        "queries_by_kind": dict(Counter(q["kind"] for q in queries)),
        "revision": _revision(),
        "cpus": os.cpu_count(),
        "wall_s": round(time.monotonic() - started, 1),
        "backends": backends,
    }
    print(write(figures).read_text())


if __name__ == "__main__":
    main()
