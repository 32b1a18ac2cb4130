"""The tutorial's design, rebuilt only to be measured against (never shipped).

GET / does a Redis GET of one key; on a miss it opens a new psycopg connection, runs
SELECT version(), closes it and stores the result for 300 s. /health opens a new database
connection and pings Redis on every call. Served by gunicorn with 4 sync workers.
"""

from __future__ import annotations

import os

import psycopg
import redis
from flask import Flask, jsonify

app = Flask(__name__)
cache = redis.Redis.from_url(os.environ["REDIS_URL"])
DSN = os.environ["BASELINE_DSN"]


@app.get("/")
def index():  # type: ignore[no-untyped-def]
    """The tutorial endpoint."""
    cached = cache.get("db_version")
    if cached:
        return jsonify(message="From Redis Cache!", data=cached.decode())
    with psycopg.connect(DSN) as conn:
        version = conn.execute("SELECT version()").fetchone()[0]  # type: ignore[index]
    cache.set("db_version", version, ex=300)
    return jsonify(message="From Database!", data=version)


@app.get("/health")
def health():  # type: ignore[no-untyped-def]
    """A new database connection and a Redis ping per call."""
    with psycopg.connect(DSN) as conn:
        conn.execute("SELECT 1")
    cache.ping()
    return jsonify(status="healthy")
