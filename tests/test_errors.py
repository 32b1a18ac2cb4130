"""Every error is application/problem+json; never HTML, a stack trace or exception text."""

from __future__ import annotations

from flask.testing import FlaskClient


def _is_problem(response, status: int) -> dict:  # type: ignore[no-untyped-def, type-arg]
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == status
    text = response.get_data(as_text=True)
    assert "Traceback" not in text
    assert "<html" not in text.lower()
    return body  # type: ignore[no-any-return]


def test_routing_404_and_405(client: FlaskClient) -> None:
    _is_problem(client.get("/no/such/path"), 404)
    response = client.put("/api/v1/products")
    _is_problem(response, 405)
    assert "GET" in response.headers["Allow"]


def test_malformed_json_is_400(client: FlaskClient) -> None:
    response = client.post(
        "/api/v1/auth/register", data='{"email": "x@example.in",', content_type="application/json"
    )
    assert _is_problem(response, 400)["detail"] == "The request body is not valid JSON."


def test_json_that_is_not_an_object_is_422(client: FlaskClient) -> None:
    response = client.post("/api/v1/auth/register", json=["a", "list"])
    assert _is_problem(response, 422)["errors"]


def test_oversized_body_is_413(client: FlaskClient) -> None:
    response = client.post(
        "/api/v1/auth/register", data=b"x" * (2 * 1024 * 1024), content_type="application/json"
    )
    _is_problem(response, 413)


def test_hostile_strings_are_just_data(client: FlaskClient) -> None:
    for q in ("' OR 1=1 --", "../../etc/passwd", "%_%", "दिल्ली", "\\", "a" * 200):
        response = client.get("/api/v1/products", query_string={"q": q})
        assert response.status_code == 200, q
        assert response.get_json()["items"] == []
    _is_problem(client.get("/api/v1/products", query_string={"q": "a" * 201}), 422)
    _is_problem(client.get("/api/v1/products/-1"), 404)
    _is_problem(client.get("/api/v1/products/99999999999999999999999"), 404)
    _is_problem(client.get("/api/v1/products/0"), 404)
