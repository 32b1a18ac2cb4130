"""The one settings object: defaults, production refusals, and *_FILE secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from flipkart_api.server import granian_argv
from flipkart_api.settings import DEV_SECRET_KEY, ConfigError, load_settings

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
    settings = load_settings(database_url="postgres://u:p@h:5432/d", secret_key=STRONG)
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


@pytest.mark.parametrize("env", ["development", "test"])
def test_dev_key_signs_only_on_the_embedded_default(env: str) -> None:
    settings = load_settings(app_env=env)
    assert settings.effective_secret_key == DEV_SECRET_KEY
    assert load_settings(app_env=env, secret_key="short").effective_secret_key == "short"


@pytest.mark.parametrize("env", ["development", "test"])
@pytest.mark.parametrize(
    "servers_given",
    [
        {"database_url": "postgresql://u:p@h/d"},
        {"redis_url": "redis://h:6379/0"},
        {"database_url": "postgresql://u:p@h/d", "redis_url": "redis://h:6379/0"},
    ],
)
@pytest.mark.parametrize("secret", [None, "short", DEV_SECRET_KEY, "changeme" * 5])
def test_servers_without_a_real_secret_refuse_to_start(
    env: str, servers_given: dict[str, str], secret: str | None
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(app_env=env, secret_key=secret, **servers_given)
    message = str(refused.value)
    assert "\n" not in message
    assert "SECRET_KEY of at least 32 random characters" in message
    assert "DATABASE_URL or REDIS_URL is set" in message
    good = load_settings(app_env=env, secret_key=STRONG, **servers_given)
    assert good.effective_secret_key == STRONG


@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_cli_refuses_servers_without_a_secret_in_one_line(tmp_path: Path, command: str) -> None:
    result = run([command], {"REDIS_URL": "redis://127.0.0.1:1/0"}, tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("configuration error: ")
    assert "SECRET_KEY" in result.stderr


def test_token_lifetime_has_an_upper_bound() -> None:
    assert load_settings(jwt_expires_seconds=86400).jwt_expires_seconds == 86400
    with pytest.raises(ConfigError, match="JWT_EXPIRES_SECONDS=86401 is above the limit"):
        load_settings(jwt_expires_seconds=86401)


def test_jwt_issuer_and_audience_default_to_the_service_name() -> None:
    settings = load_settings()
    assert settings.jwt_issuer == settings.jwt_audience == "flipkart-api"
    custom = load_settings(jwt_issuer="shop-auth", jwt_audience="shop-api")
    assert (custom.jwt_issuer, custom.jwt_audience) == ("shop-auth", "shop-api")


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
    env = {"DATABASE_URL": closed, "SECRET_KEY": STRONG}
    result = run(["migrate", "--wait", "3"], env, tmp_path)
    assert result.returncode == 1
    assert "retrying" in result.stderr
    assert "giving up" in result.stderr
