"""The one settings object: defaults, production refusals, and *_FILE secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from flipkart_api.server import granian_argv
from flipkart_api.settings import ConfigError, load_settings

from . import servers
from .test_cli import run

STRONG = "s" * 48


def test_development_defaults_to_sqlite_and_memory() -> None:
    settings = load_settings()
    assert settings.uses_sqlite
    assert settings.redis_url is None
    assert settings.cache_ttl_seconds == 300
    assert settings.port == 5000


def test_postgres_urls_are_pointed_at_psycopg3() -> None:
    settings = load_settings(database_url="postgres://u:p@h:5432/d")
    assert settings.effective_database_url == "postgresql+psycopg://u:p@h:5432/d"


@pytest.mark.parametrize(
    ("env", "explicit", "logged"),
    [
        ("development", None, True),
        ("production", None, False),  # nginx's edge log has every request
        ("production", True, True),
        ("development", False, False),
    ],
)
def test_access_log_is_on_but_in_production(env: str, explicit: bool | None, logged: bool) -> None:
    settings = load_settings(
        app_env=env, access_log=explicit, secret_key=STRONG, database_url="postgresql://h/d"
    )
    assert settings.effective_access_log is logged
    flag = "--access-log" if logged else "--no-access-log"
    assert flag in granian_argv(settings)


def test_secrets_from_files(tmp_path: Path) -> None:
    (tmp_path / "secret_key").write_text(STRONG + "\n")
    (tmp_path / "database_url").write_text("postgresql://u:p@db/d\n")
    settings = load_settings(
        app_env="production",
        secret_key_file=tmp_path / "secret_key",
        database_url_file=tmp_path / "database_url",
    )
    assert settings.effective_secret_key == STRONG
    assert settings.effective_database_url == "postgresql+psycopg://u:p@db/d"


def test_unreadable_secret_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY_FILE"):
        load_settings(secret_key_file=tmp_path / "missing")


@pytest.mark.slow  # waits out the migrate command's retries
def test_migrate_waits_for_the_database_then_gives_up(tmp_path: Path) -> None:
    closed = f"postgresql://nobody@127.0.0.1:{servers.free_port()}/nothing"
    result = run(["migrate", "--wait", "3"], {"DATABASE_URL": closed}, tmp_path)
    assert result.returncode == 1
    assert "retrying" in result.stderr
    assert "giving up" in result.stderr
