"""The bench report: targets, the front door section, the image row; the load scripts."""

from __future__ import annotations

import contextlib
import http.server
import json
import shutil
import threading
from pathlib import Path
from typing import Any, ClassVar

import pytest
from bench import load, report

IMAGE = {
    "image": "flipkart-api:test",
    "base": "python:3.13-slim",
    "image_mb": 170.1,
    "above_base_mb": 53.9,
    "revision": "abc1234",
    "measured_on": "2026-12-01",
}


def _last_full_run() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((report.RESULTS / "2026-11-28.json").read_text())
    return doc


def _resources(doc: dict[str, Any]) -> str:
    doc["targets"] = report.targets(doc)
    return report._markdown(doc, []).split("## Resources")[1].split("\n## ")[0]


def test_resources_table_has_the_image_above_its_base() -> None:
    doc = _last_full_run() | {"image": IMAGE}
    resources = _resources(doc)
    assert "| image above its base `python:3.13-slim` (MB; 170.1 in all) | 53.9 " in resources
    assert "revision abc1234, 2026-12-01" in resources
    target = next(t for t in doc["targets"] if t["target"].startswith("image above its base"))
    assert target["value"] == 53.9
    assert target["bound"] == "<= 60"
    assert target["met"] is True


def test_resources_table_says_when_the_image_was_not_measured() -> None:
    doc = _last_full_run() | {"image": None}
    assert "image above its base (MB) | not measured" in _resources(doc)
    assert not any(t["target"].startswith("image") for t in doc["targets"])


def test_the_container_tests_figures_are_what_the_report_reads() -> None:
    """bench/results/image-latest.json, as tests/container/test_image.py writes it."""
    figures = report.image_figures()
    assert figures is not None
    assert {"base", "image_mb", "above_base_mb", "revision", "measured_on"} <= set(figures)
    assert figures["above_base_mb"] <= report.MAX_IMAGE_ABOVE_BASE_MB


# -- the front door (nginx -> Varnish -> replicas) ---------------------------------------
def _fig(value: float) -> dict[str, float]:
    return {"median": value, "min": value, "max": value}


def _row(scenario: str, via: str, rps: float, p99: float, **cpu: float) -> dict[str, Any]:
    figures = {"rps": rps, "ok_rps": rps, "p50_ms": p99 / 3, "p90_ms": p99 / 2, "p99_ms": p99}
    figures["requests"] = rps
    cpu_ms = {"nginx": 0.05, "varnish": 0.05, "replicas": 0.0, "wrk": 0.03, "other": 0.01}
    return {
        "scenario": scenario,
        "via": via,
        **{k: _fig(v) for k, v in figures.items()},
        "non_2xx": _fig(0),
        "socket_errors": _fig(0),
        "cpu_ms_per_request": cpu_ms | cpu,
    }


def _edge(detail_rps: float, stale: int = 0) -> dict[str, Any]:
    detail, close = report.DETAIL, report.CLOSE
    return {
        "negotiated": {"tls_version": "TLSv1.3", "cipher": "TLS_AES_256_GCM_SHA384", "alpn": "h2"},
        "primed": {"200 MISS": 1054},
        "rows": [
            _row(detail, "front door https", detail_rps, 10.0, nginx=0.08, wrk=0.05),
            _row(detail, "front door http", 25_000, 8.0),
            _row("cached filtered list", "front door https", 13_000, 15.0),
            _row("cached search", "front door https", 12_000, 15.0),
            _row(close, "front door https", 1_000, 20.0, nginx=0.5, wrk=0.7),
            _row(close, "front door http", 10_000, 3.0),
        ],
        "handshake": {"handshakes_per_s": 300.0, "ms_per_handshake": 3.3},
        "mix": {
            "scenario": "Zipf read mix with 1% price writes",
            "products": 10_000,
            "zipf_s": 1.0,
            "write_share": 0.01,
            "list_share": 0.1,
            "rps": _fig(2000),
            "client": {
                "detail_hits": 900.0,
                "detail_misses": 50.0,
                "list_hits": 10.0,
                "list_misses": 40.0,
                "writes": 10.0,
                "write_errors": 0.0,
                "reads": 1000.0,
                "hit_ratio": 0.91,
                "detail_hit_ratio": 0.9474,
                "list_hit_ratio": 0.2,
                "write_share_measured": 0.0099,
                "writes_per_s": 10.0,
            },
            "varnishstat": {
                "cache_hit": 910.0,
                "cache_miss": 95.0,
                "s_pass": 12.0,
                "beresp_uncacheable": 30.0,
                "n_expired": 0.0,
                "hit_ratio": 0.9055,
            },
            "stale": {
                "reads_checked": 40,
                "stale_reads": stale,
                "failed_writes": 0,
                "first_read_after_write_was_miss": 20,
                "examples": ["wrote 3=100000000003, read 3=100000000002"] if stale else [],
            },
        },
        "purge_cost": {"purges": 500, "wall_ms": 0.3, "cpu_ms": 0.26, "undelivered": 0.0},
        "ab": [
            {
                "scenario": "POST /api/v1/orders",
                "with purges": _row("orders", "a", 196, 300.0, replicas=7.0),
                "without purges": _row("orders", "b", 200, 290.0, replicas=6.8),
            },
            {
                "scenario": "admin PATCH /api/v1/products/{id}",
                "with purges": _row("admin", "a", 240, 200.0, replicas=6.0),
                "without purges": _row("admin", "b", 300, 190.0, replicas=4.7),
            },
        ],
    }


def _edge_targets(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["target"]: t for t in report.targets(doc) if t["target"].startswith("front door")}


def test_front_door_targets_compare_with_the_tutorials_get_root_in_the_same_run() -> None:
    doc = _last_full_run()
    base = next(
        r
        for r in doc["results"]
        if r["scenario"] == "tutorial GET / (baseline)" and r["via"] == "nginx"
    )
    base_rps = base["rps"]["median"]  # 1299 in that run
    met = _edge_targets(doc | {"edge": _edge(detail_rps=16 * base_rps)})
    detail = met["front door: cached detail req/s / tutorial GET / req/s"]
    assert (detail["value"], detail["bound"], detail["met"]) == (16.0, ">= 15", True)
    assert "why" not in detail
    missed = _edge_targets(doc | {"edge": _edge(detail_rps=12 * base_rps)})
    detail = missed["front door: cached detail req/s / tutorial GET / req/s"]
    assert (detail["value"], detail["met"], detail["missed_by"]) == (
        12.0,
        False,
        "20% short of the bound",
    )
    assert "nginx 0.080" in detail["why"]
    assert "wrk 0.050" in detail["why"]
    # 13,000 and 12,000 req/s against 10 x 1,299
    assert missed["front door: cached filtered list req/s / tutorial GET / req/s"]["met"] is True
    assert missed["front door: cached search req/s / tutorial GET / req/s"]["met"] is False
    hit = missed["front door: hit ratio, Zipf over 10,000 products, 1% writes (X-Edge)"]
    assert (hit["value"], hit["met"]) == (0.91, False)
    assert "lists and search 20.0%" in hit["why"]
    stat = missed["front door: hit ratio, the same run (varnishstat cache_hit / hit+miss)"]
    assert stat["value"] == 0.9055
    tls = missed["front door: HTTPS / HTTP req/s, keep-alive, cached detail"]
    assert tls["value"] == round(12 * base_rps / 25_000, 4)
    orders = missed["front door: POST /api/v1/orders req/s with purges / without"]
    assert (orders["value"], orders["met"]) == (0.98, True)
    admin = missed["front door: admin PATCH /api/v1/products/{id} req/s with purges / without"]
    assert (admin["value"], admin["met"], admin["missed_by"]) == (
        0.8,
        False,
        "16% short of the bound",
    )
    assert "6.00 ms of CPU with purges and 4.70 without" in admin["why"]
    assert "one PURGE as edge.py sends it costs 0.30 ms and 0.26 ms of Python CPU" in admin["why"]


def test_a_stale_read_misses_its_target_and_names_the_read() -> None:
    doc = _last_full_run() | {"edge": _edge(detail_rps=20_000, stale=1)}
    stale = _edge_targets(doc)["front door: stale reads after a write returned (of 40)"]
    assert (stale["value"], stale["bound"], stale["met"]) == (1, "<= 0", False)
    assert stale["why"] == "wrote 3=100000000003, read 3=100000000002"


def test_the_report_has_the_front_door_section_and_says_why_a_target_is_missed() -> None:
    doc = _last_full_run() | {"edge": _edge(detail_rps=12_000)}
    doc["targets"] = report.targets(doc)
    text = report._markdown(doc, [])
    assert "| target | measured | bound | met | missed by, and why |" in text
    assert "## The front door: nginx (HTTP and HTTPS) -> Varnish (production VCL)" in text
    assert "TLSv1.3, TLS_AES_256_GCM_SHA384, ALPN `h2`" in text
    assert (
        "| stale reads after a write returned (detail and `?sort=-price` page) | 0 of 40 |" in text
    )
    # 1 / 1,000 - 1 / 10,000 s per request: the handshake's cost
    assert "each handshake costs about 0.90 ms" in text
    assert "| admin PATCH /api/v1/products/{id} | with purges | 240 (240-240) |" in text
    row = next(
        line for line in text.splitlines() if line.startswith("| front door: cached detail req/s")
    )
    assert "**no** | 38% short of the bound: 12,000 req/s against the 19,481 needed" in row


def test_a_run_without_the_front_door_still_renders() -> None:
    """Results written before the front door existed (2026-11-28.json) have no `edge`."""
    doc = _last_full_run()
    assert "edge" not in doc
    doc["targets"] = report.targets(doc)
    assert not any(t["target"].startswith("front door") for t in doc["targets"])
    assert "## The front door" not in report._markdown(doc, [])


def test_wrk_output_with_the_mix_scripts_counts_is_parsed() -> None:
    out = (
        "  617 requests in 1.01s, 1.62MB read\nRequests/sec:    611.71\n"
        "edge: detail_hits=500 detail_misses=20 list_hits=3 list_misses=60 writes=6 "
        "write_errors=0\n"
    )
    figures = load.parse(out)
    assert (figures["detail_hits"], figures["list_misses"], figures["writes"]) == (500, 60, 6)


class _Edge(http.server.BaseHTTPRequestHandler):
    """Answers like the front door: X-Edge HIT on even product ids, lists always MISS."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave at once, no delayed-ACK stalls
    patched: ClassVar[list[int]] = []

    def _answer(self, body: bytes, cache_control: str, edge: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", cache_control)
        self.send_header("X-Edge", edge)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        tail = self.path.removeprefix("/api/v1/products")
        if tail.startswith("/"):
            pid = int(tail[1:])
            self._answer(b'{"id":%d}' % pid, "public, max-age=0", "HIT" if pid % 2 else "MISS")
        else:
            self._answer(b'{"items":[]}', "public, max-age=0", "MISS")

    def do_PATCH(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        _Edge.patched.append(int(self.path.rsplit("/", 1)[1]))
        self._answer(b"{}", "no-store", "MISS")

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_the_zipf_mix_counts_hits_and_misses_per_kind_and_spares_the_checked_products(
    tmp_path: Path,
) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Edge)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        args = ("2000", "token", "1.0", "0.05", "0.1", "20")
        figures = load.run(url, 1, 4, tmp_path, "zipf_mix", args)
    finally:
        server.shutdown()
        server.server_close()
    counted = sum(
        figures[k] for k in ("detail_hits", "detail_misses", "list_hits", "list_misses", "writes")
    )
    assert counted >= figures["requests"] > 100
    assert figures["list_hits"] == 0
    assert figures["list_misses"] > 0
    # Zipf: id 1 (odd: a HIT here) alone is about an eighth of the details
    assert figures["detail_hits"] > figures["detail_misses"] > 0
    assert 0.02 < figures["writes"] / counted < 0.1
    assert figures["write_errors"] == 0
    assert _Edge.patched
    assert min(_Edge.patched) > 20  # the stale checker's products are never written by wrk


class _Origin(http.server.BaseHTTPRequestHandler):
    """A replica stand-in: every GET is a public answer the VCL stores (s-maxage)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        body = b'{"id":1,"price":100}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "public, max-age=0, s-maxage=60")
        self.send_header("xkey", "p1 products")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_the_front_door_speaks_tls_13_and_h2_and_varnishstat_counts_its_hits(
    tmp_path: Path,
) -> None:
    """bench/edge.py on the real engines: nginx with the openssl-made certificate, Varnish
    with the production VCL; varnishstat's counters are what the hit ratio is made of."""
    from bench import edge, stack

    origin = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Origin)
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    try:
        with stack.processes() as procs, contextlib.ExitStack() as stops:
            cert = edge.make_cert(tmp_path)
            door = edge.start_front_door(
                procs, stops, tmp_path, "t", [origin.server_address[1]], cert
            )
            assert edge.negotiated(door) | {"cipher": None} == {
                "tls_version": "TLSv1.3",
                "cipher": None,
                "alpn": "h2",
            }
            before = edge.varnishstat(door.varnish)
            paths = ["/api/v1/products/1", "/api/v1/products/2"]
            assert edge.prime(door, paths, clients=1) == {"200 MISS": 2}
            assert edge.prime(door, paths * 2, clients=2) == {"200 HIT": 4}
            counted = edge.hit_ratio(before, edge.varnishstat(door.varnish))
            assert (counted["cache_hit"], counted["cache_miss"]) == (4, 2)
            assert counted["hit_ratio"] == round(4 / 6, 4)
            assert edge.purge_cost(door, 10)["undelivered"] == 0
            assert edge.prime(door, paths[:1], clients=1) == {"200 MISS": 1}  # purged
    finally:
        origin.shutdown()
        origin.server_close()
