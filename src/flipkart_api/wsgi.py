"""The WSGI entry point for the app server: `flipkart_api.wsgi:app`."""

from __future__ import annotations

from . import create_app

app = create_app()
