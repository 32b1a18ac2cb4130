"""The webhooks admin API on both backends: endpoints, secrets, the delivery log, redelivery."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, text
from standardwebhooks import Webhook, WebhookVerificationError
from werkzeug.test import TestResponse

from flipkart_api import create_app
from flipkart_api.db import session
from flipkart_api.events.fanout import fan_out_pending
from flipkart_api.events.models import Delivery, DeliveryAttempt, OutboxEvent, WebhookEndpoint
from flipkart_api.events.outbox import new_event_id
from flipkart_api.settings import Settings, load_settings
from flipkart_api.uow import UnitOfWork

from .receivers import WebhookReceiver, drain

API = "/api/v1/webhooks"
URL = "https://hooks.example.com/flipkart"
TOO_BIG = 2**63  # one past BIGINT


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The backend's settings with private addresses refused, whatever the environment says."""
    return load_settings(**(settings.model_dump() | {"webhook_allow_private": False}))


@pytest.fixture
def private_app(settings: Settings) -> Iterator[Flask]:
    """A second app on the same database that lets endpoints point at 127.0.0.1."""
    application = create_app(
        load_settings(**(settings.model_dump() | {"webhook_allow_private": True}))
    )
    yield application
    application.extensions["db_engine"].dispose()


def problem(response: TestResponse, status: int) -> dict[str, Any]:
    """The problem+json body of a response that must have this status."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.get_json()
    return body


def create(client: FlaskClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    """A new endpoint (URL unless told), as the 201 shows it."""
    response = client.post(API, json={"url": URL, **body}, headers=headers)
    assert response.status_code == 201, response.get_json()
    created: dict[str, Any] = response.get_json()
    return created


def stored_secret(app: Flask, endpoint_id: int) -> str:
    with app.app_context():
        secret = session().scalar(
            select(WebhookEndpoint.secret).where(WebhookEndpoint.id == endpoint_id)
        )
        assert secret is not None
        return secret


def make_log(app: Flask, endpoint_id: int, statuses: list[str], attempts: int = 0) -> list[int]:
    """One event and one delivery per status, oldest first; `attempts` attempts on the first."""
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    ids: list[int] = []
    with app.app_context():
        sess = session()
        with UnitOfWork(sess):
            for n, status in enumerate(statuses):
                at = start + dt.timedelta(minutes=n)
                event = OutboxEvent(
                    event_id=new_event_id(), type="order.placed", subject=f"order:{n}",
                    payload={"n": n}, created_at=at, dispatched_at=at,
                )  # fmt: skip
                sess.add(event)
                sess.flush()
                delivery = Delivery(
                    event_id=event.id, channel="webhook", endpoint_id=endpoint_id,
                    lock_key=f"webhook:{endpoint_id}:order:{n}", status=status,
                    attempts=1 if status != "pending" else 0, next_attempt_at=at,
                    last_status_code=500 if status == "dead" else None,
                    last_error="HTTP 500" if status == "dead" else None, created_at=at,
                    delivered_at=at if status == "delivered" else None,
                )  # fmt: skip
                sess.add(delivery)
                sess.flush()
                ids.append(delivery.id)
            for i in range(attempts):
                sess.add(
                    DeliveryAttempt(
                        delivery_id=ids[0], attempted_at=start + dt.timedelta(seconds=i),
                        ok=False, status_code=500, latency_ms=float(i), error=f"try {i}",
                        response_snippet="no",
                    )
                )  # fmt: skip
    return ids


# -- endpoints ----------------------------------------------------------------------------
def test_create_shows_the_secret_once(
    app: Flask, client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    response = client.post(
        API,
        json={
            "url": URL,
            "event_types": ["stock.low", "order.placed", "stock.low"],
            "description": " ops ",
        },
        headers=admin_headers,
    )
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert created["secret"].startswith("whsec_")
    assert created["secret"] == stored_secret(app, created["id"])
    assert created["event_types"] == ["order.placed", "stock.low"]  # once each, in a fixed order
    assert (created["url"], created["description"], created["enabled"]) == (URL, "ops", True)
    assert response.headers["Location"] == f"{API}/{created['id']}"

    read = client.get(response.headers["Location"], headers=admin_headers)
    assert read.status_code == 200
    assert read.get_json() == {k: v for k, v in created.items() if k != "secret"}
    listed = client.get(API, headers=admin_headers).get_json()["items"]
    assert listed == [read.get_json()]
    everything = create(client, admin_headers, enabled=False)
    assert everything["event_types"] == []
    assert everything["enabled"] is False
    assert [e["id"] for e in client.get(API, headers=admin_headers).get_json()["items"]] == [
        created["id"],
        everything["id"],
    ]
    assert "whsec_" not in client.get(API, headers=admin_headers).get_data(as_text=True)


def test_patch_rotate_and_delete(
    app: Flask, client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    endpoint = create(client, admin_headers)
    path = f"{API}/{endpoint['id']}"
    changed = client.patch(
        path,
        json={
            "url": "https://other.example.com/h",
            "event_types": ["order.shipped"],
            "enabled": False,
        },
        headers=admin_headers,
    )
    assert changed.status_code == 200, changed.get_json()
    body = changed.get_json()
    assert (body["url"], body["event_types"], body["enabled"]) == (
        "https://other.example.com/h",
        ["order.shipped"],
        False,
    )
    assert body["description"] == ""
    assert "secret" not in body
    assert (
        client.patch(path, json={}, headers=admin_headers).get_json()
        == client.get(path, headers=admin_headers).get_json()
    )
    for bad, field in (
        ({"url": "http://127.0.0.1/h"}, "url"),
        ({"event_types": ["order.lost"]}, "event_types[0]"),
        ({"enabled": None}, "enabled"),
        ({"secret": "whsec_mine"}, "secret"),
    ):
        errors = problem(client.patch(path, json=bad, headers=admin_headers), 422)["errors"]
        assert [e["field"] for e in errors] == [field], errors

    rotated = client.post(f"{path}/rotate-secret", headers=admin_headers)
    assert rotated.status_code == 200
    assert rotated.get_json()["secret"].startswith("whsec_")
    assert rotated.get_json()["secret"] != endpoint["secret"]
    assert rotated.get_json()["secret"] == stored_secret(app, endpoint["id"])
    assert "secret" not in client.get(path, headers=admin_headers).get_json()

    (delivery_id,) = make_log(app, endpoint["id"], ["dead"], attempts=2)
    deleted = client.delete(path, headers=admin_headers)
    assert deleted.status_code == 204
    assert deleted.data == b""
    with app.app_context():  # the FK cascade took its deliveries and their attempts
        sess = session()
        assert sess.get(Delivery, delivery_id) is None
        assert sess.scalar(select(func.count()).select_from(DeliveryAttempt)) == 0
    for method in ("get", "patch", "delete"):
        problem(
            client.open(
                path,
                method=method.upper(),
                json={} if method == "patch" else None,
                headers=admin_headers,
            ),
            404,
        )
    problem(client.post(f"{path}/rotate-secret", headers=admin_headers), 404)


def test_admins_only(
    client: FlaskClient, admin_headers: dict[str, str], customer_headers: dict[str, str]
) -> None:
    endpoint = create(client, admin_headers)
    path = f"{API}/{endpoint['id']}"
    calls = [
        ("POST", API, {"url": URL}), ("GET", API, None), ("GET", path, None),
        ("PATCH", path, {"enabled": False}), ("DELETE", path, None),
        ("POST", f"{path}/rotate-secret", None), ("GET", f"{path}/deliveries", None),
        ("GET", f"{path}/deliveries/1", None), ("POST", f"{path}/deliveries/1/redeliver", None),
    ]  # fmt: skip
    for method, url, body in calls:
        problem(client.open(url, method=method, json=body), 401)
        forbidden = problem(
            client.open(url, method=method, json=body, headers=customer_headers), 403
        )
        assert "admin" in forbidden["detail"]
    assert client.get(path, headers=admin_headers).get_json()["enabled"] is True  # unchanged


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"url": "ftp://hooks.example.com/h"}, "url", "scheme must be http or https"),
        ({"url": "https://user:pw@hooks.example.com/h"}, "url", "credentials"),
        ({"url": "http://127.0.0.1:8080/h"}, "url", "loopback"),
        ({"url": "http://10.1.2.3/h"}, "url", "private address"),
        ({"url": "http://169.254.169.254/latest"}, "url", "metadata"),
        ({"url": "http://localhost/h"}, "url", "loopback name"),
        (
            {"url": "https://hooks.example.com/h", "event_types": ["order.lost"]},
            "event_types[0]",
            "unknown event type",
        ),
        ({"url": URL, "colour": "blue"}, "colour", "Unknown field"),
        ({"url": URL, "description": "x" * 201}, "description", "200"),
        ({"url": URL, "enabled": "yes"}, "enabled", "boolean"),
        ({"event_types": []}, "url", "required"),
    ],
)
def test_refused_bodies(
    client: FlaskClient, admin_headers: dict[str, str], body: dict[str, Any], field: str, words: str
) -> None:
    body_out = problem(client.post(API, json=body, headers=admin_headers), 422)
    assert [e["field"] for e in body_out["errors"]] == [field], body_out
    assert words in body_out["errors"][0]["message"], body_out
    assert body_out["detail"].startswith(f"{field}: ")
    assert client.get(API, headers=admin_headers).get_json()["items"] == []


def test_private_addresses_are_allowed_when_configured(
    private_app: Flask, admin_headers: dict[str, str]
) -> None:
    client = private_app.test_client()
    for url in ("http://127.0.0.1:8080/h", "http://10.1.2.3/h", "http://localhost/h"):
        assert create(client, admin_headers, url=url)["url"] == url
    # What is never a webhook URL stays refused.
    problem(client.post(API, json={"url": "ftp://10.1.2.3/h"}, headers=admin_headers), 422)


def test_impossible_ids_are_not_found(client: FlaskClient, admin_headers: dict[str, str]) -> None:
    endpoint = create(client, admin_headers)
    for path in (
        f"{API}/{TOO_BIG}", f"{API}/0", f"{API}/{TOO_BIG}/deliveries",
        f"{API}/{endpoint['id']}/deliveries/{TOO_BIG}", f"{API}/{endpoint['id']}/deliveries/99",
    ):  # fmt: skip
        problem(client.get(path, headers=admin_headers), 404)
    problem(
        client.post(
            f"{API}/{endpoint['id']}/deliveries/{TOO_BIG}/redeliver", headers=admin_headers
        ),
        404,
    )


# -- the delivery log -------------------------------------------------------------------
def test_delivery_log_filters_and_pages(
    app: Flask, client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    endpoint = create(client, admin_headers)
    other = create(client, admin_headers)
    statuses = ["delivered", "dead", "pending", "delivered", "pending"]
    ids = make_log(app, endpoint["id"], statuses)
    make_log(app, other["id"], ["dead"])
    base = f"{API}/{endpoint['id']}/deliveries"

    items = client.get(base, headers=admin_headers).get_json()["items"]
    assert [d["id"] for d in items] == ids[::-1]  # newest first, the other endpoint's left out
    newest = items[0]
    assert set(newest) == {
        "id", "event_id", "event_type", "subject", "status", "attempts", "last_status_code",
        "last_error", "next_attempt_at", "created_at", "delivered_at",
    }  # fmt: skip
    assert newest["event_id"].startswith("evt_")
    assert newest["event_type"] == "order.placed"
    assert newest["subject"] == "order:4"
    assert newest["next_attempt_at"] is not None
    dead = next(d for d in items if d["status"] == "dead")
    assert (dead["next_attempt_at"], dead["last_status_code"], dead["last_error"]) == (
        None,
        500,
        "HTTP 500",
    )
    assert next(d for d in items if d["status"] == "delivered")["delivered_at"] is not None

    for status in ("pending", "delivered", "dead"):
        page = client.get(f"{base}?status={status}", headers=admin_headers).get_json()
        assert [d["id"] for d in page["items"]] == [
            i for i, s in zip(ids, statuses, strict=True) if s == status
        ][::-1]

    seen: list[int] = []
    url = f"{base}?limit=2"
    while True:
        page = client.get(url, headers=admin_headers).get_json()
        assert len(page["items"]) <= 2
        seen += [d["id"] for d in page["items"]]
        if page["next_cursor"] is None:
            break
        url = f"{base}?limit=2&cursor={page['next_cursor']}"
    assert seen == ids[::-1]
    first = client.get(f"{base}?limit=1&status=delivered", headers=admin_headers).get_json()
    rest = client.get(
        f"{base}?status=delivered&cursor={first['next_cursor']}", headers=admin_headers
    ).get_json()
    assert [d["id"] for d in first["items"] + rest["items"]] == [ids[3], ids[0]]

    problem(client.get(f"{base}?status=lost", headers=admin_headers), 422)
    problem(client.get(f"{base}?cursor=bm90LWEtY3Vyc29y", headers=admin_headers), 422)
    problem(client.get(f"{base}?limit=0", headers=admin_headers), 422)
    problem(client.get(f"{base}?colour=blue", headers=admin_headers), 422)


def test_delivery_detail_shows_the_last_attempts_oldest_first(
    app: Flask, client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    endpoint = create(client, admin_headers)
    other = create(client, admin_headers)
    first, second = make_log(app, endpoint["id"], ["dead", "pending"], attempts=60)
    detail = client.get(f"{API}/{endpoint['id']}/deliveries/{first}", headers=admin_headers)
    assert detail.status_code == 200
    body = detail.get_json()
    assert body["id"] == first
    assert body["status"] == "dead"
    log = body["attempt_log"]
    assert [a["error"] for a in log] == [f"try {i}" for i in range(10, 60)]
    assert set(log[0]) == {
        "attempted_at",
        "ok",
        "status_code",
        "latency_ms",
        "error",
        "response_snippet",
    }
    assert (log[0]["ok"], log[0]["status_code"], log[0]["response_snippet"]) == (False, 500, "no")
    empty = client.get(f"{API}/{endpoint['id']}/deliveries/{second}", headers=admin_headers)
    assert empty.get_json()["attempt_log"] == []
    # Another endpoint's delivery is not found through this one.
    problem(client.get(f"{API}/{other['id']}/deliveries/{first}", headers=admin_headers), 404)
    problem(
        client.post(f"{API}/{other['id']}/deliveries/{first}/redeliver", headers=admin_headers), 404
    )


def test_redeliver_queues_it_again(
    app: Flask, client: FlaskClient, admin_headers: dict[str, str], backend: str
) -> None:
    endpoint = create(client, admin_headers)
    dead, delivered, pending = make_log(
        app, endpoint["id"], ["dead", "delivered", "pending"], attempts=3
    )
    base = f"{API}/{endpoint['id']}/deliveries"

    for delivery_id in (dead, delivered):
        response = client.post(f"{base}/{delivery_id}/redeliver", headers=admin_headers)
        assert response.status_code == 202, response.get_json()
        body = response.get_json()
        assert (body["id"], body["status"], body["attempts"]) == (delivery_id, "pending", 0)
        assert body["next_attempt_at"] is not None
        assert (
            client.get(f"{base}/{delivery_id}", headers=admin_headers).get_json()["status"]
            == "pending"
        )
    assert (
        len(client.get(f"{base}/{dead}", headers=admin_headers).get_json()["attempt_log"]) == 3
    )  # kept
    # Pending already: queued once is enough (a second job would send it twice).
    assert (
        "pending"
        in problem(client.post(f"{base}/{pending}/redeliver", headers=admin_headers), 409)["detail"]
    )
    problem(client.post(f"{base}/{dead}/redeliver", headers=admin_headers), 409)

    if backend == "postgres":
        with app.app_context():
            jobs = (
                session()
                .execute(
                    text(
                        "SELECT args FROM procrastinate_jobs"
                        " WHERE task_name = 'flipkart:deliver' ORDER BY id"
                    )
                )
                .scalars()
                .all()
            )
        assert jobs == [{"delivery_id": dead}, {"delivery_id": delivered}]

    (off,) = make_log(app, create(client, admin_headers, enabled=False)["id"], ["dead"])
    with app.app_context():
        endpoint_id = session().scalar(select(Delivery.endpoint_id).where(Delivery.id == off))
    assert (
        "disabled"
        in problem(
            client.post(f"{API}/{endpoint_id}/deliveries/{off}/redeliver", headers=admin_headers),
            409,
        )["detail"]
    )


def test_after_rotation_deliveries_are_signed_with_the_new_secret(
    private_app: Flask, admin_headers: dict[str, str]
) -> None:
    """Through the worker's own code: the rotated secret signs, a redeliver sends it again."""
    client = private_app.test_client()
    receiver = WebhookReceiver()
    try:
        endpoint = create(client, admin_headers, url=receiver.url)
        path = f"{API}/{endpoint['id']}"
        new = client.post(f"{path}/rotate-secret", headers=admin_headers).get_json()["secret"]
        with private_app.app_context():
            sess = session()
            with UnitOfWork(sess):
                event = OutboxEvent(
                    event_id=new_event_id(), type="stock.low", subject="product:1", payload={}
                )
                sess.add(event)
            event_id = event.event_id
            _, (delivery_id,) = fan_out_pending(sess, private_app.config["SETTINGS"])
        drain(private_app)
        (received,) = receiver.received
        Webhook(new).verify(received.body, received.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(endpoint["secret"]).verify(received.body, received.headers)
        detail = client.get(f"{path}/deliveries/{delivery_id}", headers=admin_headers).get_json()
        assert detail["status"] == "delivered"
        assert detail["attempt_log"][0]["status_code"] == 200

        assert (
            client.post(
                f"{path}/deliveries/{delivery_id}/redeliver", headers=admin_headers
            ).status_code
            == 202
        )
        drain(private_app)
        assert [r.headers["webhook-id"] for r in receiver.received] == [event_id] * 2
        detail = client.get(f"{path}/deliveries/{delivery_id}", headers=admin_headers).get_json()
        assert (detail["status"], detail["attempts"], len(detail["attempt_log"])) == (
            "delivered",
            1,
            2,
        )
    finally:
        receiver.close()
