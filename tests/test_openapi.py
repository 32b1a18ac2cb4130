"""The OpenAPI document is valid and lists the whole public contract; /docs renders."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from openapi_spec_validator import validate

EXPECTED = {
    ("get", "/"), ("get", "/health"), ("get", "/livez"), ("get", "/readyz"),
    ("post", "/api/v1/auth/register"), ("post", "/api/v1/auth/token"), ("get", "/api/v1/users/me"),
    ("get", "/api/v1/categories"), ("post", "/api/v1/categories"),
    ("get", "/api/v1/products"), ("post", "/api/v1/products"),
    ("get", "/api/v1/products/{product_id}"), ("patch", "/api/v1/products/{product_id}"),
    ("delete", "/api/v1/products/{product_id}"),
    ("get", "/api/v1/cart"), ("put", "/api/v1/cart/items/{product_id}"),
    ("delete", "/api/v1/cart/items/{product_id}"),
    ("get", "/api/v1/orders"), ("post", "/api/v1/orders"), ("get", "/api/v1/orders/{order_id}"),
    ("post", "/api/v1/orders/{order_id}/cancel"), ("post", "/api/v1/orders/{order_id}/status"),
}  # fmt: skip


def test_openapi_is_valid_and_complete(client: FlaskClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    assert spec["openapi"].startswith("3.")
    validate(spec)
    operations = {(m, path) for path, item in spec["paths"].items() for m in item}
    assert operations >= EXPECTED
    assert "BearerAuth" in spec["components"]["securitySchemes"]
    params = {p["name"] for p in spec["paths"]["/api/v1/products"]["get"]["parameters"]}
    assert params >= {
        "q",
        "category",
        "brand",
        "min_price",
        "max_price",
        "in_stock",
        "sort",
        "limit",
        "cursor",
    }


def test_idempotency_header_is_documented(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    params = spec["paths"]["/api/v1/orders"]["post"]["parameters"]
    assert {"in": "header", "name": "Idempotency-Key"}.items() <= params[0].items()


def test_docs_page(client: FlaskClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert "openapi.json" in response.get_data(as_text=True)


def test_docs_page_loads_only_our_own_assets(client: FlaskClient) -> None:
    """No CDN, no href="None" favicon; each asset is served by us, cacheable for a year."""
    html = client.get("/docs").get_data(as_text=True)
    urls = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert len(urls) == 4, urls  # stylesheet, favicon, bundle, preset
    for url in urls:
        assert url.startswith("/docs/assets/"), url
        with client.get(url) as response:  # a file response: closed, or it leaks the file
            assert response.status_code == 200, url
            assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            kind = {"js": "text/javascript", "css": "text/css", "png": "image/png"}
            assert response.mimetype == kind[url.rsplit(".", 1)[1]], url
    version = urls[0].split("/")[3]
    for unserved in (
        f"/docs/assets/{version}/swagger-ui.js",  # in the package, unused by the page
        f"/docs/assets/{version}/swagger-ui-bundle.js.map",
        f"/docs/assets/{version}/../__init__.py",
        "/docs/assets/0.0.1/swagger-ui.css",  # another version's URL: never an old file
    ):
        assert client.get(unserved).status_code == 404, unserved
    assert "validatorUrl" in html  # no document sent to validator.swagger.io for a badge
    assert "/docs/assets" not in str(client.get("/openapi.json").get_json()["paths"])


def test_hostile_input_answers_are_documented(client: FlaskClient) -> None:
    """What the app answers before a schema runs is in the document (schemathesis checks it)."""
    spec = client.get("/openapi.json").get_json()
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            if "requestBody" in operation:
                assert {"400", "413", "415"} <= set(responses), (method, path)
                assert "application/problem+json" in responses["415"]["content"]
            for param in operation.get("parameters", []):
                if param["in"] == "path":
                    assert (param["schema"]["minimum"], param["schema"]["maximum"]) == (
                        1,
                        2**63 - 1,
                    )
    admin_only = [("post", "/api/v1/categories"), ("post", "/api/v1/products"),
                  ("patch", "/api/v1/products/{product_id}"),
                  ("delete", "/api/v1/products/{product_id}"),
                  ("post", "/api/v1/orders/{order_id}/status")]  # fmt: skip
    for method, path in admin_only:
        assert "403" in spec["paths"][path][method]["responses"], (method, path)
