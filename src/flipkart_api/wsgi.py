"""The WSGI entry point for the app server: `flipkart_api.wsgi:app`."""

from __future__ import annotations

from . import create_app

app = create_app()
if app.config["SETTINGS"].effective_worker_embedded:
    # The embedded default (SQLite) delivers events from a thread in each server process.
    from .events.embedded import EmbeddedWorker

    EmbeddedWorker(app).start()
