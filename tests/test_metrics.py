"""What /metrics counts, read back through /metrics itself, in one process on both backends.

Across a replica's worker processes (the multi-process mode) and through the front door:
tests/test_metrics_server.py. Each test reads counters before and after, since the metrics
are the process's (every app of a test process counts into the same values).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from flipkart_api import create_app

from .conftest import TEST_SECRET_KEY, bearer, sqlite_settings
from .test_orders import ADDRESS, in_stock_ids, order

DETAIL = "/api/v1/products/<int:product_id>"


def scrape(client: FlaskClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample /metrics shows: (name, sorted labels) -> value."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    """One sample's value; 0 when it has not been counted yet."""
    return float(samples.get((name, tuple(sorted(labels.items()))), 0.0))


def test_requests_are_counted_by_route_template_never_by_path(
    seeded: Flask, client: FlaskClient
) -> None:
    before = scrape(client)
    ids = [random.randrange(1, 2**63) for _ in range(2000)]
    for product_id in ids:
        assert client.get(f"/api/v1/products/{product_id}").status_code in (200, 404)
    junk = [f"/{random.randrange(10**9)}/x{random.randrange(10**9)}" for _ in range(300)]
    for path in junk:
        assert client.get(path).status_code == 404
    for method in ("BREW", "PROPFIND"):  # any client can invent a method
        client.open("/api/v1/products/1", method=method)
    after = scrape(client)

    detail = sum(
        value(after, "flipkart_http_requests_total", route=DETAIL, method="GET", status=s)
        - value(before, "flipkart_http_requests_total", route=DETAIL, method="GET", status=s)
        for s in ("200", "404")
    )
    assert detail == len(ids)
    unmatched = value(
        after, "flipkart_http_requests_total", route="unmatched", method="GET", status="404"
    ) - value(before, "flipkart_http_requests_total", route="unmatched", method="GET", status="404")
    assert unmatched == len(junk)

    # Thousands of ids and junk paths made a handful of series at most (the detail's 200 and
    # 404, `unmatched`, the invented methods as `other`), none of them naming a path.
    def series(samples: dict) -> list[dict[str, str]]:  # type: ignore[type-arg]
        return [dict(labels) for name, labels in samples if name == "flipkart_http_requests_total"]

    assert len(series(after)) - len(series(before)) <= 6
    routes = {s["route"] for s in series(after)}
    assert not routes & ({f"/api/v1/products/{i}" for i in ids} | set(junk))
    assert not [route for route in routes if any(part.isdigit() for part in route.split("/"))]
    assert {s["method"] for s in series(after)} <= {"GET", "HEAD", "POST", "PUT", "PATCH",
                                                     "DELETE", "OPTIONS", "other"}  # fmt: skip
    timed = value(
        after, "flipkart_http_request_duration_seconds_count", route=DETAIL, method="GET"
    ) - value(before, "flipkart_http_request_duration_seconds_count", route=DETAIL, method="GET")
    assert timed == len(ids)
    assert value(after, "flipkart_http_requests_in_flight") == 0


def test_a_hit_answered_before_flask_is_counted_under_its_route(
    seeded: Flask, client: FlaskClient
) -> None:
    before = scrape(client)
    first = client.get("/api/v1/products/3")
    second = client.get("/api/v1/products/3")
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("MISS", "HIT")
    after = scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("flipkart_http_requests_total", route=DETAIL, method="GET", status="200") == 2
    assert moved("flipkart_cache_requests_total", kind="product", result="miss") == 1
    assert moved("flipkart_cache_requests_total", kind="product", result="hit") == 1


def test_orders_placed_rejected_and_replayed_are_counted(
    seeded: Flask,
    client: FlaskClient,
    customer_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    (product_id, scarce) = in_stock_ids(client, 2)
    client.patch(f"/api/v1/products/{scarce}", json={"stock": 1}, headers=admin_headers)
    before = scrape(client)
    keyed = customer_headers | {"Idempotency-Key": "metrics-1"}
    first, replay = (order(client, keyed, [(product_id, 1)]) for _ in range(2))
    assert (first.status_code, replay.status_code) == (201, 201)
    assert first.get_json() == replay.get_json()
    assert order(client, customer_headers, [(scarce, 2)]).status_code == 409
    after = scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("flipkart_orders_placed_total") == 1
    assert moved("flipkart_orders_replayed_total") == 1
    assert moved("flipkart_orders_rejected_total", reason="stock") == 1
    assert moved("flipkart_orders_rejected_total", reason="cap") == 0


def test_an_order_over_a_cap_is_counted_as_such(tmp_path: Path, sqlite_template: Path) -> None:
    app = create_app(sqlite_settings(tmp_path, sqlite_template, orders_max_open_units=2))
    client = app.test_client()
    body = {"email": "cap@example.in", "password": "correct-horse-1", "name": "Cap"}
    assert client.post("/api/v1/auth/register", json=body).status_code == 201
    headers = bearer(client, body["email"], body["password"])
    before = scrape(client)
    answer = client.post(
        "/api/v1/orders",
        json={"items": [{"product_id": 1, "quantity": 3}], "shipping_address": ADDRESS},
        headers=headers,
    )
    assert answer.status_code == 409
    after = scrape(client)
    reason = {"reason": "cap"}
    assert (
        value(after, "flipkart_orders_rejected_total", **reason)
        - value(before, "flipkart_orders_rejected_total", **reason)
        == 1
    )


def test_rate_limited_requests_are_counted_by_route(tmp_path: Path, sqlite_template: Path) -> None:
    settings = sqlite_settings(
        tmp_path, sqlite_template, ratelimit_enabled=True, ratelimit_register="1/minute"
    )
    client = create_app(settings).test_client()
    route = {"route": "/api/v1/auth/register"}
    before = value(scrape(client), "flipkart_rate_limited_total", **route)
    statuses = [
        client.post(
            "/api/v1/auth/register",
            json={"email": f"r{i}@example.in", "password": "correct-horse-1", "name": "R"},
        ).status_code
        for i in range(3)
    ]
    assert statuses == [201, 429, 429]
    assert value(scrape(client), "flipkart_rate_limited_total", **route) - before == 2


def test_a_cache_outage_shows_as_bypasses_and_an_open_breaker(
    tmp_path: Path, sqlite_template: Path
) -> None:
    from . import servers

    dead = f"redis://127.0.0.1:{servers.free_port()}/0"  # nothing listens there
    settings = sqlite_settings(
        tmp_path, sqlite_template, redis_url=dead, secret_key=TEST_SECRET_KEY
    )
    client = create_app(settings).test_client()
    before = scrape(client)
    assert client.get("/api/v1/categories").headers["X-Cache"] == "BYPASS"
    after = scrape(client)
    assert value(after, "flipkart_cache_breaker_open") == 1
    bypassed = sum(
        value(after, "flipkart_cache_requests_total", kind=k, result="bypass")
        - value(before, "flipkart_cache_requests_total", kind=k, result="bypass")
        for k in ("categories", "unkeyed")
    )
    assert bypassed == 1


@pytest.mark.usefixtures("seeded")
def test_pool_gauges_and_a_checkout_timeout(backend: str, settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    if backend != "postgres":
        pytest.skip("the pool sizes are PostgreSQL's settings")
    small = settings.model_copy(
        update={"db_pool_size": 1, "db_max_overflow": 0, "db_pool_timeout_seconds": 0.2}
    )
    app = create_app(small)
    client = app.test_client()
    before = scrape(client)
    assert value(before, "flipkart_db_pool_size") == 1
    held = app.extensions["db_engine"].connect()  # the pool's one connection, taken
    try:
        assert value(scrape(client), "flipkart_db_pool_connections_in_use") == 1
        answer = client.get("/api/v1/products/1")
        assert answer.status_code == 503
        assert answer.headers["Content-Type"] == "application/problem+json"
    finally:
        held.close()
    after = scrape(client)
    assert value(after, "flipkart_db_pool_connections_in_use") == 0
    assert (
        value(after, "flipkart_db_pool_checkout_timeouts_total")
        - value(before, "flipkart_db_pool_checkout_timeouts_total")
        == 1
    )
    app.extensions["db_engine"].dispose()


def test_build_info_names_the_version_and_revision(tmp_path: Path, sqlite_template: Path) -> None:
    settings = sqlite_settings(tmp_path, sqlite_template, app_revision="abc123def456")
    samples = scrape(create_app(settings).test_client())
    assert value(samples, "flipkart_build_info", version="0.1.0", revision="abc123def456") == 1


def test_metrics_can_be_turned_off(tmp_path: Path, sqlite_template: Path) -> None:
    settings = sqlite_settings(tmp_path, sqlite_template, metrics_enabled=False)
    response = create_app(settings).test_client().get("/metrics")
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize(
    "headers", [{"X-Forwarded-For": "203.0.113.7"}, {"Forwarded": "for=203.0.113.7"}]
)
def test_a_scrape_through_a_proxy_is_refused(
    tmp_path: Path, sqlite_template: Path, headers: dict[str, str]
) -> None:
    # Whatever spelling got a request past the front door, a proxy forwarded it.
    client = create_app(sqlite_settings(tmp_path, sqlite_template)).test_client()
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 404
    assert b"flipkart_" not in response.data
