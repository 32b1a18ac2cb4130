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

from bench import metrics_cost, outbox_cost

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


def progress_mix(mix: dict[str, Any]) -> None:
    """The read mix's line: requests/s, hit ratios, stale reads."""
    client, stat = mix["client"], mix["varnishstat"]
    print(
        f"{mix['scenario']:58} {mix['rps']['median']:>8.0f} req/s  hit ratio "
        f"{client['hit_ratio']:.3f} (varnishstat {stat['hit_ratio']:.3f}, details "
        f"{client['detail_hit_ratio']:.3f}, lists {client['list_hit_ratio']:.3f})  stale "
        f"{mix['stale']['stale_reads']}/{mix['stale']['reads_checked']}",
        flush=True,
    )


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
        out.append(_target(name, value, op, bound))
    if doc.get("edge"):
        out += edge_targets(doc["edge"], base_root, doc.get("cpus") or os.cpu_count() or 1)
    if doc.get("metrics"):
        out += [_target(*row) for row in metrics_cost.targets(doc["metrics"])]
    if doc.get("outbox"):
        out += [_target(*row) for row in outbox_cost.targets(doc["outbox"])]
    return out


def _target(name: str, value: float, op: str, bound: float, why: str = "") -> dict[str, Any]:
    """One target row; `why` is said only when the target is missed."""
    met = {">=": value >= bound, "<=": value <= bound, "<": value < bound}[op]
    row: dict[str, Any] = {
        "target": name,
        "value": round(value, 4 if abs(value) < 10 else 2),
        "bound": f"{op} {bound:g}",
        "met": met,
        "value_over_bound": round(value / bound, 2) if bound else None,
    }
    if not met:
        row["missed_by"] = _missed_by(value, op, bound)
        row["why"] = why
    return row


def _missed_by(value: float, op: str, bound: float) -> str:
    """How far from the bound, as a share of it."""
    if bound == 0:
        return f"{value:g} over 0"
    gap = (bound - value) / bound if op == ">=" else (value - bound) / bound
    return f"{100 * gap:.0f}% short of the bound" if op == ">=" else f"{100 * gap:.0f}% over it"


def _edge_row(edge: dict[str, Any], scenario: str, via: str) -> dict[str, Any]:
    return next(r for r in edge["rows"] if r["scenario"] == scenario and r["via"] == via)


def _cpu_text(row: dict[str, Any], cores: int) -> str:
    """Where each request's CPU went, and the ceiling that puts on this host."""
    cpu = row["cpu_ms_per_request"]
    total = sum(cpu.values())
    parts = ", ".join(f"{name} {ms:.3f}" for name, ms in cpu.items())
    ceiling = 1000 * cores / total if total > 0 else float("nan")
    return (
        f"CPU ms per request: {parts} (total {total:.3f}: {cores} cores allow about "
        f"{ceiling:,.0f} req/s; wrk runs on the same cores)"
    )


DETAIL = "cached product detail, hot set of 1,000"
CLOSE = "cached product detail, new connection each"


def edge_targets(
    edge: dict[str, Any], base_root: dict[str, Any], cores: int
) -> list[dict[str, Any]]:
    """The front door's targets against the tutorial's GET / through its nginx."""
    base_rps, base_p99 = _median(base_root, "rps"), _median(base_root, "p99_ms")
    https, http = (
        _edge_row(edge, DETAIL, "front door https"),
        _edge_row(edge, DETAIL, "front door http"),
    )
    rows = []
    rps = _median(https, "rps")
    rows.append(
        _target(
            "front door: cached detail req/s / tutorial GET / req/s",
            rps / base_rps,
            ">=",
            15.0,
            f"{rps:,.0f} req/s against the {15 * base_rps:,.0f} needed; " + _cpu_text(https, cores),
        )
    )
    p99 = _median(https, "p99_ms")
    rows.append(
        _target(
            "front door: cached detail p99 / tutorial GET / p99",
            p99 / base_p99,
            "<=",
            0.25,
            f"p99 {p99:.1f} ms against {base_p99 / 4:.1f} ms, while p50 is "
            f"{https['p50_ms']['median']:.1f} ms and p90 {https['p90_ms']['median']:.1f} ms: "
            "only the tail misses, requests that wait for a core; " + _cpu_text(https, cores),
        )
    )
    for scenario in ("cached filtered list", "cached search"):
        row = _edge_row(edge, scenario, "front door https")
        value = _median(row, "rps")
        rows.append(
            _target(
                f"front door: {scenario} req/s / tutorial GET / req/s",
                value / base_rps,
                ">=",
                10.0,
                f"{value:,.0f} req/s against the {10 * base_rps:,.0f} needed; "
                + _cpu_text(row, cores),
            )
        )
    mix = edge["mix"]
    client, stat = mix["client"], mix["varnishstat"]
    why_mix = (
        f"details {100 * client['detail_hit_ratio']:.1f}% hits, lists and search "
        f"{100 * client['list_hit_ratio']:.1f}%: each of the {client['writes_per_s']:.0f} "
        "price writes a second purges its product's detail, the pages listing it and every "
        "page sorted or filtered by price (`by-price`); a miss fetched across a purge of its "
        "bucket is delivered but not stored, and a hit on an object stored under 0.1 s before "
        "whose bucket was purged goes to the app (Varnish counted "
        f"{stat['beresp_uncacheable']:.0f} uncacheable backend answers for "
        f"{stat['cache_miss']:.0f} misses and {stat['s_pass']:.0f} passes)"
    )
    rows.append(
        _target(
            f"front door: hit ratio, Zipf over {mix['products']:,} products, 1% writes (X-Edge)",
            client["hit_ratio"],
            ">=",
            0.95,
            why_mix,
        )
    )
    rows.append(
        _target(
            "front door: hit ratio, the same run (varnishstat cache_hit / hit+miss)",
            stat["hit_ratio"],
            ">=",
            0.95,
            why_mix,
        )
    )
    stale = mix["stale"]
    rows.append(
        _target(
            f"front door: stale reads after a write returned (of {stale['reads_checked']})",
            stale["stale_reads"],
            "<=",
            0,
            "; ".join(stale["examples"]),
        )
    )
    tls = _median(https, "rps") / _median(http, "rps")
    cpu_s, cpu_p = https["cpu_ms_per_request"], http["cpu_ms_per_request"]

    def server(c: dict[str, float]) -> float:
        return c.get("nginx", 0.0) + c.get("varnish", 0.0)

    rows.append(
        _target(
            "front door: HTTPS / HTTP req/s, keep-alive, cached detail",
            tls,
            ">=",
            0.7,
            f"per request TLS adds {cpu_s['nginx'] - cpu_p['nginx']:.3f} ms of nginx CPU and "
            f"{cpu_s['wrk'] - cpu_p['wrk']:.3f} ms of wrk's on the same {cores} cores; on the "
            f"server side alone (nginx + Varnish) HTTPS costs {server(cpu_s) / server(cpu_p):.2f}x "
            f"the CPU of HTTP; the host's other load took {cpu_s.get('other', 0):.3f} ms per "
            f"request during the HTTPS runs and {cpu_p.get('other', 0):.3f} during the HTTP ones",
        )
    )
    cost = edge.get("purge_cost") or {"wall_ms": float("nan"), "cpu_ms": float("nan")}
    for ab in edge["ab"]:
        on, off = ab["with purges"], ab["without purges"]
        value = _median(on, "ok_rps") / _median(off, "ok_rps")
        c_on, c_off = on["cpu_ms_per_request"], off["cpu_ms_per_request"]
        rows.append(
            _target(
                f"front door: {ab['scenario']} req/s with purges / without",
                value,
                ">=",
                0.95,
                f"{_median(on, 'ok_rps'):.0f} against {_median(off, 'ok_rps'):.0f} req/s; per "
                f"request the replicas spend {c_on['replicas']:.2f} ms of CPU with purges and "
                f"{c_off['replicas']:.2f} without, Varnish {c_on['varnish']:.3f} and "
                f"{c_off['varnish']:.3f}; each write waits for its PURGE to every instance "
                f"before it answers, and one PURGE as edge.py sends it costs {cost['wall_ms']:.2f}"
                f" ms and {cost['cpu_ms']:.2f} ms of Python CPU in an idle process",
            )
        )
    return rows


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
        "| target | measured | bound | met | missed by, and why |",
        "|---|---|---|---|---|",
        *(
            f"| {t['target']} | {t['value']} | {t['bound']} | {'yes' if t['met'] else '**no**'} "
            f"| {_why(t)} |"
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
    if doc.get("edge"):
        lines += _edge_markdown(doc["edge"], doc.get("cpus") or os.cpu_count() or 1)
    if doc.get("metrics"):
        lines += metrics_cost.markdown(doc["metrics"])
    if doc.get("outbox"):
        lines += outbox_cost.markdown(doc["outbox"])
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


def _why(t: dict[str, Any]) -> str:
    if t["met"]:
        return ""
    return f"{t['missed_by']}" + (f": {t['why']}" if t.get("why") else "")


def _primed(seen: dict[str, int]) -> str:
    """{"200 MISS": 1054} -> "1,054 answered 200 MISS"."""
    return ", ".join(f"{count:,} answered {kind}" for kind, count in sorted(seen.items()))


def _edge_markdown(edge: dict[str, Any], cores: int) -> list[str]:
    """The front door's section: throughput, TLS, hit ratio, the purges' A/B."""
    neg = edge["negotiated"]
    lines = [
        "",
        "## The front door: nginx (HTTP and HTTPS) -> Varnish (production VCL) -> 3 replicas",
        "",
        f"HTTPS: {neg['tls_version']}, {neg['cipher']}, ALPN `{neg['alpn']}` offered to a "
        "client that asks for h2 (wrk speaks HTTP/1.1 over TLS); self-signed ECDSA P-256. "
        "Every URL of the cached scenarios was fetched once before they started "
        f"({_primed(edge['primed'])}). CPU columns: ms of CPU per request in the timed runs; "
        "`other` is the host's busy time none of these processes explains.",
        "",
        "| scenario | via | req/s | p50 ms | p99 ms | errors | CPU ms/request |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in edge["rows"]:
        cpu = ", ".join(f"{k} {v:.3f}" for k, v in r["cpu_ms_per_request"].items())
        errors = r["non_2xx"]["median"] + r["socket_errors"]["median"]
        lines.append(
            f"| {r['scenario']} | {r['via']} | {_cell(r, 'rps')} | {_cell(r, 'p50_ms', '.1f')} "
            f"| {_cell(r, 'p99_ms', '.1f')} | {errors:.0f} | {cpu} |"
        )
    https = _edge_row(edge, CLOSE, "front door https")
    http = _edge_row(edge, CLOSE, "front door http")
    per_tls = 1000 / _median(https, "rps") - 1000 / _median(http, "rps")
    cpu_s, cpu_p = https["cpu_ms_per_request"], http["cpu_ms_per_request"]
    hs = edge["handshake"]
    lines += [
        "",
        "TLS handshake on its own: with a new connection per request (`Connection: close`, "
        f"16 clients) HTTPS gives {_median(https, 'rps'):,.0f} req/s and HTTP "
        f"{_median(http, 'rps'):,.0f}: each handshake costs about {per_tls:.2f} ms of this "
        f"{cores}-core machine (nginx "
        f"{cpu_s['nginx'] - cpu_p['nginx']:.3f} ms of CPU, the client "
        f"{cpu_s['wrk'] - cpu_p['wrk']:.3f} ms). `openssl s_time -new` (one client, full "
        "handshakes one after another): "
        f"{hs['handshakes_per_s']:,.0f} handshakes/s, {hs['ms_per_handshake']:.2f} ms each.",
    ]
    mix, client, stat, stale = (
        edge["mix"],
        edge["mix"]["client"],
        edge["mix"]["varnishstat"],
        edge["mix"]["stale"],
    )
    lines += [
        "",
        f"### Hit ratio: Zipf (s = {mix['zipf_s']:g}) over {mix['products']:,} products, "
        f"{100 * mix['list_share']:.0f}% list/search pages, {100 * mix['write_share']:.0f}% "
        "admin price PATCHes, through HTTPS",
        "",
        "| measure | value |",
        "|---|---|",
        f"| requests/s (all kinds) | {_cell(mix, 'rps')} |",
        f"| hit ratio, X-Edge counted by wrk | {client['hit_ratio']:.4f} |",
        f"| product details: hits / misses | {client['detail_hits']:.0f} / "
        f"{client['detail_misses']:.0f} ({client['detail_hit_ratio']:.4f}) |",
        f"| list and search pages: hits / misses | {client['list_hits']:.0f} / "
        f"{client['list_misses']:.0f} ({client['list_hit_ratio']:.4f}) |",
        f"| writes (share of requests, per s, failed) | {client['writes']:.0f} "
        f"({client['write_share_measured']:.4f}, {client['writes_per_s']:.0f}/s, "
        f"{client['write_errors']:.0f}) |",
        f"| varnishstat: cache_hit / cache_miss (ratio) | {stat['cache_hit']:.0f} / "
        f"{stat['cache_miss']:.0f} ({stat['hit_ratio']:.4f}) |",
        f"| varnishstat: passes, uncacheable answers, expired | {stat['s_pass']:.0f}, "
        f"{stat['beresp_uncacheable']:.0f}, {stat['n_expired']:.0f} |",
        f"| stale reads after a write returned (detail and `?sort=-price` page) | "
        f"{stale['stale_reads']} of {stale['reads_checked']} |",
        f"| first detail read after a write was a MISS | "
        f"{stale['first_read_after_write_was_miss']} of {stale['reads_checked'] // 2} |",
        "",
        "### Writes with the cache's purges (EDGE_PURGE_URLS set) and without, interleaved",
        "",
        "| write | side | ok req/s | p50 ms | p99 ms | non-2xx | replicas CPU ms/request |",
        "|---|---|---|---|---|---|---|",
    ]
    for ab in edge["ab"]:
        for side in ("with purges", "without purges"):
            r = ab[side]
            lines.append(
                f"| {ab['scenario']} | {side} | {_cell(r, 'ok_rps')} | "
                f"{_cell(r, 'p50_ms', '.1f')} | {_cell(r, 'p99_ms', '.1f')} | "
                f"{r['non_2xx']['median']:.0f} | {r['cpu_ms_per_request']['replicas']:.2f} |"
            )
    if edge.get("purge_cost"):
        cost = edge["purge_cost"]
        lines += [
            "",
            f"One purge as the app sends it (`flipkart_api.edge.Edge.purge`, {cost['purges']} "
            f"in a row from the harness's idle process): {cost['wall_ms']:.3f} ms, "
            f"{cost['cpu_ms']:.3f} ms of CPU; undelivered: {cost['undelivered']:.0f}.",
        ]
    return lines


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
    if doc.get("edge"):
        names.append(_edge_plot(doc, stamp))
    return names


def _edge_plot(doc: dict[str, Any], stamp: str) -> str:
    """4. The front door against the tutorial's GET /, and the purges' A/B."""
    edge = doc["edge"]
    base = _find(doc["results"], "tutorial GET / (baseline)")
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8), width_ratios=(3, 2))
    labels = ["tutorial GET / (its nginx)"] + [
        f"{r['scenario']} [{r['via']}]" for r in edge["rows"]
    ]
    values = [_median(base, "rps")] + [_median(r, "rps") for r in edge["rows"]]
    left.barh(labels, values, color=["tab:gray"] + ["tab:green"] * len(edge["rows"]))
    for times, style in ((10, ":"), (15, "--")):
        left.axvline(times * _median(base, "rps"), color="tab:red", ls=style, lw=1,
                     label=f"{times}x the tutorial")  # fmt: skip
    left.invert_yaxis()
    left.tick_params(axis="y", labelsize=7)
    left.set_xlabel("requests/s (front door: nginx -> Varnish -> 3 replicas)")
    left.legend(fontsize=7)
    names = [ab["scenario"] for ab in edge["ab"]]
    for i, side in enumerate(("with purges", "without purges")):
        right.bar([x + 0.4 * i for x in range(len(names))],
                  [_median(ab[side], "ok_rps") for ab in edge["ab"]], 0.4, label=side)  # fmt: skip
    right.set_xticks([x + 0.2 for x in range(len(names))], names, fontsize=7)
    right.set_ylabel("successful writes/s through the front door")
    right.legend(fontsize=8)
    fig.tight_layout()
    name = f"{stamp}-edge.png"
    fig.savefig(RESULTS / name, dpi=110)
    plt.close(fig)
    return name
