"""/docs without the internet: Swagger UI's files served by us, from a pinned package.

apiflask's page loads Swagger UI from a CDN (a blank page offline, and a third party told of
every visit) and its favicon from apiflask.com. The files come from `flask-swagger-ui`
instead (Swagger UI as plain static files, no source maps; docs/decisions.md says why that
package), under a URL that names the Swagger UI version: a new version is a new URL, so
browsers may keep each file for a year without ever running an old one.
"""

from __future__ import annotations

from importlib import metadata, resources
from pathlib import Path

from apiflask import APIFlask
from flask import Blueprint, Response, abort, current_app, send_file

ASSET_PACKAGE = "flask-swagger-ui"
# The four files the page loads, and their types (nosniff makes a browser hold us to them).
# Nothing else in the package is served: swagger-ui.js, index.css and the OAuth redirect
# files are unused (the image may drop them).
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui-standalone-preset.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}
ONE_YEAR = 365 * 24 * 3600

bp = Blueprint("docs_assets", __name__)  # a plain blueprint: not part of the API document


def assets_dir() -> Path:
    """Where the pinned package keeps Swagger UI's files."""
    return Path(str(resources.files("flask_swagger_ui").joinpath("dist")))


@bp.get("/docs/assets/<version>/<name>")
def asset(version: str, name: str) -> Response:
    """One of Swagger UI's files, cacheable for a year (its URL changes with the version)."""
    if version != current_app.extensions["docs_assets_version"] or name not in ASSETS:
        abort(404)
    response = send_file(
        assets_dir() / name, mimetype=ASSETS[name], max_age=ONE_YEAR, conditional=True
    )
    response.cache_control.public = True
    response.cache_control.immutable = True
    return response


def init_app(app: APIFlask) -> None:
    """Point apiflask's Swagger UI page at our copies; no favicon or validator elsewhere."""
    version = metadata.version(ASSET_PACKAGE)  # the package follows Swagger UI's versions
    prefix = f"/docs/assets/{version}"
    app.extensions["docs_assets_version"] = version
    app.config.update(
        SWAGGER_UI_CSS=f"{prefix}/swagger-ui.css",
        SWAGGER_UI_BUNDLE_JS=f"{prefix}/swagger-ui-bundle.js",
        SWAGGER_UI_STANDALONE_PRESET_JS=f"{prefix}/swagger-ui-standalone-preset.js",
        DOCS_FAVICON=f"{prefix}/favicon-32x32.png",
        # Swagger UI would otherwise send the document to validator.swagger.io for a badge.
        SWAGGER_UI_CONFIG={"validatorUrl": None},
    )
    app.register_blueprint(bp)
