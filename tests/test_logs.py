"""Structured logs (LOG_FORMAT=json), one request id on every hop, W3C traceparent.

The app's lines from the factory (a captured handler), the real `flipkart-api serve` (its
stdout: JSON only, one access line per request, granian's off), nginx's JSON line in front
of it carrying the same request id, and Varnish's line (varnishncsa with the shipped format,
deploy/varnish/varnishncsa.format) carrying it too.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flipkart_api import create_app
from flipkart_api.catalog.seed import seed_catalog
from flipkart_api.db import session
from flipkart_api.logs import TEXT_FORMAT, trace_id
from flipkart_api.server import GRANIAN_JSON_LOG_CONFIG, granian_argv
from flipkart_api.settings import ConfigError, load_settings

from . import lifeline, servers
from .conftest import SEED_PRODUCTS, sqlite_settings, system_binary
from .faults.stack import (
    CLI,
    Replica,
    call,
    production_env,
    render_nginx_conf,
    start_nginx,
    wait_status,
)
from .test_hostile_edge import nginx_binary
from .varnish import ROOT, start_varnish

pytestmark = pytest.mark.timeout(90)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE}-00f067aa0ba902b7-01"
NCSA_FORMAT = ROOT / "deploy" / "varnish" / "varnishncsa.format"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (TRACEPARENT, TRACE),
        (f"00-{TRACE}-00f067aa0ba902b7-00", TRACE),  # not sampled: still a trace
        ("00-" + "0" * 32 + "-00f067aa0ba902b7-01", None),  # all-zero trace id
        (f"00-{TRACE}-" + "0" * 16 + "-01", None),  # all-zero parent id
        (TRACEPARENT.upper(), None),  # the spec's hex is lower case
        (f"ff-{TRACE}-00f067aa0ba902b7-01", None),  # version ff is invalid
        (f"01-{TRACE}-00f067aa0ba902b7-01", None),  # only version 00 is understood
        (TRACEPARENT[:-1], None),
        (TRACEPARENT + '\n{"level":"CRITICAL"}', None),  # a line smuggled in
        ("", None),
    ],
)
def test_only_a_valid_traceparent_gives_a_trace_id(header: str, expected: str | None) -> None:
    assert trace_id(header) == expected


def test_log_format_is_text_or_json_and_a_bad_one_refuses_to_start() -> None:
    assert load_settings().log_format == "text"
    assert load_settings(log_format="JSON").log_format == "json"
    with pytest.raises(ConfigError) as refused:
        load_settings(log_format="xml")
    assert str(refused.value) == "LOG_FORMAT=xml is not one of: text, json"


def test_granian_writes_the_access_line_in_text_mode_only() -> None:
    text = granian_argv(load_settings())
    assert "--access-log" in text
    assert "--log-config" not in text
    json_argv = granian_argv(load_settings(log_format="json"))
    assert "--no-access-log" in json_argv  # the app writes it (access_log.py)
    assert json_argv[json_argv.index("--log-config") + 1] == str(GRANIAN_JSON_LOG_CONFIG)
    assert GRANIAN_JSON_LOG_CONFIG.is_file()


@contextlib.contextmanager
def captured(app: Flask) -> Iterator[io.StringIO]:
    """What the app's stdout handler writes, while the block runs."""
    handler = next(h for h in logging.getLogger().handlers if getattr(h, "_flipkart", False))
    stream = io.StringIO()
    old = handler.setStream(stream)
    try:
        yield stream
    finally:
        handler.setStream(old)  # type: ignore[arg-type]


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line must be one JSON object."""
    lines = [json.loads(line) for line in text.splitlines()]
    assert all(isinstance(line, dict) for line in lines)
    return lines


@pytest.fixture
def json_app(tmp_path: Path, sqlite_template: Path) -> Iterator[Flask]:
    """An app with LOG_FORMAT=json on a seeded SQLite copy."""
    app = create_app(sqlite_settings(tmp_path, sqlite_template, log_format="json"))
    with app.app_context():
        seed_catalog(session(), SEED_PRODUCTS)
    yield app
    app.extensions["db_engine"].dispose()
    create_app(sqlite_settings(tmp_path, sqlite_template))  # the handler back to text


def test_json_mode_lines_carry_request_and_trace_ids(json_app: Flask) -> None:
    headers = {"X-Request-ID": "rid-from-edge-1", "traceparent": TRACEPARENT}
    with captured(json_app) as out:
        # A line the app writes while serving a request (its hooks have run).
        with json_app.test_request_context("/api/v1/products", headers=headers):
            json_app.preprocess_request()
            try:
                raise RuntimeError("the disk is on fire")
            except RuntimeError:
                logging.getLogger("flipkart_api.test").exception("it failed\nsecond line")
        client = json_app.test_client()
        with client.get("/livez?token=hunter2", headers=headers) as answer:
            assert answer.headers["X-Request-ID"] == "rid-from-edge-1"
        with client.get("/livez", headers={"traceparent": '00-bogus-"} x'}) as answer:
            fresh = answer.headers["X-Request-ID"]
    app_line, access, second = json_lines(out.getvalue())
    assert app_line["logger"] == "flipkart_api.test"
    assert app_line["level"] == "ERROR"
    assert app_line["message"] == "it failed\nsecond line"  # escaped: still one line
    assert app_line["request_id"] == "rid-from-edge-1"
    assert app_line["trace_id"] == TRACE
    assert "RuntimeError: the disk is on fire" in app_line["exception"]
    assert time.strptime(app_line["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert len(app_line["time"]) == len("2025-01-31T12:00:00.123Z")
    assert access["logger"] == "flipkart_api.access"
    assert access["request_id"] == "rid-from-edge-1"
    assert access["trace_id"] == TRACE
    assert access["method"] == "GET"
    assert access["path"] == "/livez"  # never the query string
    assert "hunter2" not in out.getvalue()
    assert access["status"] == 200
    assert access["duration_ms"] >= 0
    assert "route" in access  # the metrics layer's template (flipkart.route), when it is set
    # An invalid traceparent is ignored (no trace_id, nothing of it written); the id made
    # for a request without one is the id the response carries.
    assert second["request_id"] == fresh
    assert "trace_id" not in second
    assert "bogus" not in out.getvalue()


def test_a_hit_served_before_flask_has_its_access_line_and_one_request_id(
    json_app: Flask,
) -> None:
    """The cache front answers hits outside Flask: the same id on the line and the answer."""
    client = json_app.test_client()
    with client.get("/api/v1/products/5"):
        pass
    with captured(json_app) as out:
        hit = client.get("/api/v1/products/5", headers={"X-Request-ID": "<script>"})
        hit.close()
    assert hit.headers["X-Cache"] == "HIT"
    rid = hit.headers["X-Request-ID"]
    (access,) = json_lines(out.getvalue())
    assert rid != "<script>"
    assert access["request_id"] == rid
    assert access["status"] == 200
    assert access["path"] == "/api/v1/products/5"


def test_text_mode_keeps_the_line_for_people(tmp_path: Path, sqlite_template: Path) -> None:
    app = create_app(sqlite_settings(tmp_path, sqlite_template))
    handler = next(h for h in logging.getLogger().handlers if getattr(h, "_flipkart", False))
    assert handler.formatter is not None
    assert handler.formatter._fmt == TEXT_FORMAT
    with captured(app) as out, app.test_client().get("/livez"):
        pass
    assert out.getvalue() == ""  # granian writes the access line in text mode
    app.extensions["db_engine"].dispose()


def _json_env(
    workdir: Path, pg: servers.PostgresServer, redis: servers.RedisServer
) -> dict[str, str]:
    url = pg.create_database(f"flipkart_logs_{workdir.name}")
    env = production_env(workdir, url, redis.url(3), redis.url(4))
    env |= {"LOG_FORMAT": "json", "ACCESS_LOG": "true", "WEB_CONCURRENCY": "1"}
    done = subprocess.run([CLI, "migrate"], env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return env


def _access_lines(path: Path, logger: str | None = None) -> list[dict[str, Any]]:
    lines = json_lines(path.read_text())
    return [line for line in lines if logger is None or line.get("logger") == logger]


def _wait_for(condition: Any, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the log line did not come"
        time.sleep(0.1)


@pytest.mark.slow  # a replica and nginx of its own
def test_nginx_and_the_app_log_one_json_line_each_with_the_same_request_id(
    tmp_path: Path, pg_server: servers.PostgresServer, redis_server: servers.RedisServer
) -> None:
    """The real server's stdout is JSON only, with exactly one access line per request, and
    nginx's line for the request carries the same request id and trace id."""
    binary = nginx_binary()
    env = _json_env(tmp_path, pg_server, redis_server)
    replica = Replica(servers.free_port(), env, tmp_path / "replica.log")
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    port = servers.free_port()
    nginx = None
    try:
        replica.start()
        nginx = start_nginx(render_nginx_conf(prefix, port, [replica.port]), binary)
        wait_status(port, "/readyz")
        sent = call(
            port,
            "GET",
            "/api/v1/products?q=phone",
            headers={"X-Request-ID": "client-rid-7", "traceparent": TRACEPARENT},
        )
        bare = call(port, "GET", "/api/v1/categories")
        forged = call(port, "GET", "/livez", headers={"traceparent": '00-forged"}'})
        assert (sent.status, bare.status, forged.status) == (200, 200, 200)
        assert sent.headers["x-request-id"] == "client-rid-7"
        rids = [bare.headers["x-request-id"], forged.headers["x-request-id"]]

        def logged() -> bool:
            app_ids = {line["request_id"] for line in _access_lines(replica.logfile)}
            edge_ids = {line["request_id"] for line in _access_lines(prefix / "access.log")}
            return {"client-rid-7", *rids} <= app_ids & edge_ids

        _wait_for(logged)
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.wait(timeout=10)
        replica.stop()
    app_lines = _access_lines(replica.logfile)  # every line of stdout parsed as JSON
    access = [line for line in app_lines if line["logger"] == "flipkart_api.access"]
    assert len(access) == len({line["request_id"] for line in access})  # one per request
    assert not [line for line in app_lines if line["logger"] == "granian.access"]
    edge = {line["request_id"]: line for line in _access_lines(prefix / "access.log")}
    by_id = {line["request_id"]: line for line in access}

    # The client's id and traceparent: passed on unchanged, on both lines.
    assert by_id["client-rid-7"]["trace_id"] == TRACE
    assert edge["client-rid-7"]["trace_id"] == TRACE
    assert edge["client-rid-7"]["traceparent"] == TRACEPARENT
    assert edge["client-rid-7"]["uri"] == "/api/v1/products"  # no query string
    assert edge["client-rid-7"]["status"] == 200
    assert edge["client-rid-7"]["upstream_status"] == "200"
    assert isinstance(edge["client-rid-7"]["request_time"], float)
    assert by_id["client-rid-7"]["path"] == "/api/v1/products"
    assert by_id["client-rid-7"]["status"] == 200
    # No traceparent, or a forged one: nginx starts the trace, its trace id the request id
    # it made (the client sent none), the same on both lines; the forgery is logged nowhere.
    for rid in rids:
        assert len(rid) == 32
        assert edge[rid]["trace_id"] == rid
        assert edge[rid]["traceparent"].startswith(f"00-{rid}-")
        assert by_id[rid]["trace_id"] == rid
    assert "forged" not in replica.logfile.read_text()
    assert "forged" not in (prefix / "access.log").read_text()


@pytest.mark.slow  # a varnishd and varnishncsa of its own
def test_varnishncsa_line_carries_the_request_id_and_hit_or_miss(tmp_path: Path) -> None:
    """The cache hop's line, in the shipped format: JSON with the request's X-Request-ID."""
    ncsa = system_binary("varnishncsa", "varnish")
    origin, cache = servers.free_port(), servers.free_port()
    app_env = {
        "PATH": str(Path(CLI).parent) + ":/usr/bin:/bin",
        "HOME": str(tmp_path),
        "HOST": "127.0.0.1",
        "APP_ENV": "test",
        "INSTANCE_DIR": str(tmp_path / "instance"),
        "ACCESS_LOG": "false",
        "EDGE_PURGE_URLS": f"http://127.0.0.1:{cache}",  # so answers carry s-maxage
    }
    for args in (["migrate"], ["seed", "--products", "10", "-q"]):
        done = subprocess.run([CLI, *args], env=app_env, capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    replica = Replica(origin, app_env, tmp_path / "replica.log")
    varnish = None
    reader = None
    out = tmp_path / "varnishncsa.log"
    try:
        replica.start()
        varnish = start_varnish(tmp_path / "varnish", [origin], port=cache)
        with out.open("wb") as sink:
            reader = lifeline.spawn(
                [ncsa, "-n", str(tmp_path / "varnish" / "varnish-n"), "-j", "-f", str(NCSA_FORMAT)],
                sig=signal.SIGTERM,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        time.sleep(1)  # varnishncsa attaches to the VSM and starts at its head
        for rid in ("ncsa-rid-1", "ncsa-rid-2"):
            answer = varnish.get(
                "/api/v1/products/3", {"X-Request-ID": rid, "traceparent": TRACEPARENT}
            )
            assert answer.status == 200
            # A hit is answered with the hitting request's id, not the fetching one's.
            assert answer.getheader("X-Request-ID") == rid

        def logged() -> bool:
            return {"ncsa-rid-1", "ncsa-rid-2"} <= {line["request_id"] for line in _ncsa_lines(out)}

        _wait_for(logged, seconds=15)
    finally:
        if reader is not None and reader.poll() is None:
            reader.terminate()
            reader.wait(timeout=10)
        if varnish is not None:
            varnish.stop()
        replica.stop()
    lines = {line["request_id"]: line for line in _ncsa_lines(out)}
    first, second = lines["ncsa-rid-1"], lines["ncsa-rid-2"]
    assert (first["handling"], second["handling"]) == ("miss", "hit")
    for line in (first, second):
        assert line["traceparent"] == TRACEPARENT
        assert line["url"] == "/api/v1/products/3"
        assert line["method"] == "GET"
        assert line["status"] == 200
        assert isinstance(line["duration_ms"], int)
        assert time.strptime(line["time"], "%Y-%m-%dT%H:%M:%S.%fZ")


def _ncsa_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]
