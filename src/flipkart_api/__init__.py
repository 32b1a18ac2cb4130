"""flipkart-api: a storefront API. `create_app()` builds it; nothing happens at import.

Importing the package stays cheap on purpose: `flipkart-api serve` and `flipkart-api
healthcheck` need no Flask, SQLAlchemy or Alembic, so they start in a fraction of the time
the app takes to load (see `app.py` for the factory itself). The image's own HEALTHCHECK is
lighter still: a stdlib one-liner in the Dockerfile.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apiflask import APIFlask

    from .settings import Settings


def create_app(settings: Settings | None = None) -> APIFlask:
    """Build the app (see `flipkart_api.app.create_app`)."""
    from .app import create_app as factory

    return factory(settings)
