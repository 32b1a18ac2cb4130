"""Benchmark results: same-run ratios, targets met or missed, a Markdown report and plots."""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
from pathlib import Path
from typing import Any

import matplotlib as mpl

mpl.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

RESULTS = Path(__file__).resolve().parent / "results"
# Written by tests/container/test_image.py (`make test-docker`): the bench runs natively and
# needs no Docker engine, so it reports the image as the container tests last measured it.
IMAGE_FIGURES = RESULTS / "image-latest.json"
MAX_IMAGE_ABOVE_BASE_MB = 60.0


def image_figures(path: Path = IMAGE_FIGURES) -> dict[str, Any] | None:
    """The image's size above its base as `make test-docker` last measured it, or None."""
    if not path.exists():
        return None
    figures: dict[str, Any] = json.loads(path.read_text())
    return figures


def image_row(image: dict[str, Any] | None) -> str:
    """The resources table's image row: size above its base, which build, when."""
    if image is None:
        return "| image above its base (MB) | not measured: run `make test-docker` first | |"
    return (
        f"| image above its base `{image['base']}` (MB; {image['image_mb']} in all) "
        f"| {image['above_base_mb']} (`make test-docker`, revision "
        f"{image.get('revision', 'unknown')}, {image.get('measured_on', 'undated')}) "
        "| the same image |"
    )


def progress(label: str, figures: dict[str, Any]) -> None:
    """One line per measurement while the run goes on."""
    rps, p99 = figures["rps"]["median"], figures["p99_ms"]["median"]
    errors = figures["non_2xx"]["median"] + figures["socket_errors"]["median"]
    print(f"{label:58} {rps:>8.0f} req/s  p99 {p99:7.1f} ms  errors {errors:.0f}", flush=True)


def _find(results: list[dict[str, Any]], scenario: str, via: str = "nginx") -> dict[str, Any]:
    return next(r for r in results if r["scenario"] == scenario and r["via"] == via)


def _median(row: dict[str, Any], key: str) -> float:
    value: float = row[key]["median"]
    return value


def targets(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the issue: measured value, the bound, met or not (and by how much)."""
    res = doc["results"]
    detail = _find(res, "cached product detail, hot set of 1,000")
    base_root = _find(res, "tutorial GET / (baseline)")
    health, base_health = _find(res, "GET /health (ours)"), _find(res, "GET /health (baseline)")
    orders = _find(res, "POST /api/v1/orders")
    scale = doc["scaling"]
    small, large = min(r["products"] for r in scale), max(r["products"] for r in scale)

    def at(size: int, read: str, key: str) -> float:
        return _median(next(r for r in scale if r["products"] == size and r["read"] == read), key)

    rows = [
        (
            "cached detail req/s / baseline GET / req/s",
            _median(detail, "rps") / _median(base_root, "rps"),
            ">=",
            2.5,
        ),
        (
            "cached detail p99 / baseline GET / p99",
            _median(detail, "p99_ms") / _median(base_root, "p99_ms"),
            "<=",
            0.5,
        ),
        (
            "our /health req/s / baseline /health req/s",
            _median(health, "rps") / _median(base_health, "rps"),
            ">=",
            5.0,
        ),
        (
            f"uncached search p99 at {large:,} (ms, 10 clients)",
            at(large, "search", "p99_ms"),
            "<",
            50.0,
        ),
        (
            f"uncached filtered list p99 at {large:,} (ms, 10 clients)",
            at(large, "filtered list", "p99_ms"),
            "<",
            50.0,
        ),
    ]
    for read in ("detail", "filtered list", "search"):
        rows.append(
            (
                f"uncached {read} p50 at {large:,} / at {small:,}",
                at(large, read, "p50_ms") / at(small, read, "p50_ms"),
                "<=",
                1.5,
            )
        )
    rows += [
        ("orders/s (201s) over 1,000 products", _median(orders, "ok_rps"), ">=", 200.0),
        ("idle RSS per worker (MB)", doc["resources_idle"]["rss_per_worker_mb"], "<", 80.0),
        (
            "replica cold start to healthy (s, median)",
            statistics.median(doc["cold_start_s"]),
            "<",
            3.0,
        ),
    ]
    if doc.get("image"):
        rows.append(
            (
                "image above its base (MB, make test-docker)",
                doc["image"]["above_base_mb"],
                "<=",
                MAX_IMAGE_ABOVE_BASE_MB,
            )
        )
    out = []
    for name, value, op, bound in rows:
        met = {">=": value >= bound, "<=": value <= bound, "<": value < bound}[op]
        out.append(
            {
                "target": name,
                "value": round(value, 2),
                "bound": f"{op} {bound:g}",
                "met": met,
                "value_over_bound": round(value / bound, 2),
            }
        )
    return out


def write(doc: dict[str, Any]) -> None:
    """bench/results/<date>[-quick].json, .md and the PNG plots."""
    doc["cpus"] = os.cpu_count()
    doc["targets"] = targets(doc)
    stamp = dt.date.today().isoformat() + ("-quick" if doc["mode"] == "quick" else "")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stamp}.json").write_text(json.dumps(doc, indent=2) + "\n")
    plots = _plots(doc, stamp)
    text = _markdown(doc, plots)
    (RESULTS / f"{stamp}.md").write_text(text)
    print(text)


def _cell(row: dict[str, Any], key: str, fmt: str = ".0f") -> str:
    f = row[key]
    return f"{f['median']:{fmt}} ({f['min']:{fmt}}-{f['max']:{fmt}})"


def _markdown(doc: dict[str, Any], plots: list[str]) -> str:
    p = doc["profile"]
    lines = [
        f"# Benchmark run ({doc['mode']}, {doc['cpus']} CPUs)",
        "",
        f"wrk, {p['connections']} connections, {p['duration']} s x {p['repeats']} after a "
        f"{p['warmup']} s warm-up; {p['products']:,} products on PostgreSQL; 3 replicas per "
        "design. Medians with (min-max); ratios are from this same run.",
        "",
        "## Targets",
        "",
        "| target | measured | bound | met |",
        "|---|---|---|---|",
        *(
            f"| {t['target']} | {t['value']} | {t['bound']} | {'yes' if t['met'] else '**no**'} |"
            for t in doc["targets"]
        ),
        "",
        "## Scenarios",
        "",
        "| scenario | via | req/s | p50 ms | p99 ms | non-2xx | socket errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in doc["results"]:
        lines.append(
            f"| {r['scenario']} | {r['via']} | {_cell(r, 'rps')} | {_cell(r, 'p50_ms', '.1f')} "
            f"| {_cell(r, 'p99_ms', '.1f')} | {r['non_2xx']['median']:.0f} "
            f"| {r['socket_errors']['median']:.0f} |"
        )
    cons = doc["orders_conservation"]
    lines += [
        "",
        f"Orders: stock + units sold unchanged for all {cons['products']:,} products: "
        f"{cons['stock_plus_sold_unchanged']}; products with negative stock: "
        f"{cons['negative_stock']}.",
        "",
        "## App servers (our app, one replica, directly)",
        "",
        "| scenario | server | req/s | p50 ms | p99 ms |",
        "|---|---|---|---|---|",
        *(
            f"| {r['scenario']} | {r['server']} | {_cell(r, 'rps')} | {_cell(r, 'p50_ms', '.1f')} "
            f"| {_cell(r, 'p99_ms', '.1f')} |"
            for r in doc["servers"]
        ),
        "",
        "## Resources",
        "",
        "| measure | idle | after the load scenarios |",
        "|---|---|---|",
    ]
    idle, loaded = doc["resources_idle"], doc["resources_after_load"]
    for key in (
        "rss_per_worker_mb",
        "rss_per_worker_max_mb",
        "pss_per_worker_mb",
        "rss_per_replica_mb",
    ):
        lines.append(f"| {key.replace('_', ' ')} | {idle[key]} | {loaded[key]} |")
    lines.append(image_row(doc.get("image")))
    lines += [
        "",
        f"Workers per replica: {idle['workers_per_replica']}. Replica cold start to a healthy "
        f"`/health` (native process): {doc['cold_start_s']} s.",
        "",
        "## Uncached reads against catalog size (one replica, Redis unreachable, 10 clients)",
        "",
        "| products | read | req/s | p50 ms | p99 ms | non-2xx | seeding s |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {r['products']:,} | {r['read']} | {_cell(r, 'rps')} | {_cell(r, 'p50_ms', '.1f')} "
            f"| {_cell(r, 'p99_ms', '.1f')} | {r['non_2xx']['median']:.0f} | {r['seed_s']} |"
            for r in doc["scaling"]
        ),
        "",
        *(f"![{name}]({name})" for name in plots),
        "",
    ]
    return "\n".join(lines)


def _plots(doc: dict[str, Any], stamp: str) -> list[str]:
    """Three PNGs next to the results; returns their file names."""
    names = []
    # 1. Through nginx: each design's requests/s.
    rows = [r for r in doc["results"] if r["via"] == "nginx"]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    colours = ["tab:gray" if r["stack"] == "baseline" else "tab:blue" for r in rows]
    ax.barh([r["scenario"] for r in rows], [r["rps"]["median"] for r in rows], color=colours)
    ax.invert_yaxis()
    ax.set_xlabel("requests/s through nginx, 3 replicas (grey: tutorial baseline)")
    fig.tight_layout()
    names.append(f"{stamp}-throughput.png")
    fig.savefig(RESULTS / names[-1], dpi=110)
    plt.close(fig)
    # 2. Uncached latency against catalog size.
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for read in ("detail", "filtered list", "search"):
        pts = sorted((r["products"], r) for r in doc["scaling"] if r["read"] == read)
        sizes = [s for s, _ in pts]
        ax.plot(sizes, [r["p50_ms"]["median"] for _, r in pts], marker="o", label=f"{read} p50")
        ax.plot(
            sizes, [r["p99_ms"]["median"] for _, r in pts], marker="x", ls="--", label=f"{read} p99"
        )
    ax.set_xscale("log")
    ax.set_xlabel("products in the catalog")
    ax.set_ylabel("latency, ms (uncached, 10 clients)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    names.append(f"{stamp}-scaling.png")
    fig.savefig(RESULTS / names[-1], dpi=110)
    plt.close(fig)
    # 3. App servers.
    fig, ax = plt.subplots(figsize=(8, 4))
    scenarios = list(dict.fromkeys(r["scenario"] for r in doc["servers"]))
    servers = list(dict.fromkeys(r["server"] for r in doc["servers"]))
    width = 0.8 / len(servers)
    for i, server in enumerate(servers):
        values = [
            next(
                r["rps"]["median"]
                for r in doc["servers"]
                if r["scenario"] == s and r["server"] == server
            )
            for s in scenarios
        ]
        ax.bar([x + i * width for x in range(len(scenarios))], values, width, label=server)
    ax.set_xticks([x + width for x in range(len(scenarios))], scenarios)
    ax.set_ylabel("requests/s, one replica, directly")
    ax.legend()
    fig.tight_layout()
    names.append(f"{stamp}-servers.png")
    fig.savefig(RESULTS / names[-1], dpi=110)
    plt.close(fig)
    return names
