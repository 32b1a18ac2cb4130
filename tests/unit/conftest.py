"""The unit tier: pure functions and in-process objects, no servers, seconds for all of it.

tests/conftest.py applies here too (pytest loads every conftest from the rootdir down), but
its server fixtures are session-scoped and lazy: they start only when a test asks for them.
The guard below makes "a unit test asks for none of them" a rule rather than a habit, and
the environment is emptied so a developer's DATABASE_URL or SECRET_KEY cannot change what a
settings test sees.
"""

from __future__ import annotations

import pytest

from flipkart_api.settings import Settings

# Fixtures of tests/conftest.py that start PostgreSQL or Redis, or build an app on them.
SERVER_FIXTURES = frozenset(
    {
        "pg_server",
        "redis_server",
        "pg_url",
        "sqlite_template",
        "backend",
        "settings",
        "app",
        "client",
        "seeded",
        "admin_headers",
        "customer_headers",
    }
)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Refuse a test here that asks for a server fixture, before any fixture is set up.

    (A hook, not an autouse fixture: session-scoped fixtures are set up before function ones.)
    """
    used = SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ()))
    if used:
        pytest.fail(
            f"tests/unit starts no servers and builds no app; {item.name} uses {sorted(used)}"
        )


@pytest.fixture(autouse=True)
def _empty_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clear every variable Settings would read."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
