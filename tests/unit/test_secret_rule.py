"""settings.py's secret-key rule: the dev key signs only when no server URL is configured.

The conftest empties the environment, so these see only the keywords given here.
"""

from __future__ import annotations

from typing import Any

import pytest

from flipkart_api.secret_rule import DEV_SECRET_KEY, MIN_SECRET_LENGTH, PLACEHOLDER_SECRETS
from flipkart_api.settings import ConfigError, load_settings

STRONG = "k3y-" + "q" * (MIN_SECRET_LENGTH - 4)  # exactly the minimum length
SERVERS: list[dict[str, Any]] = [
    {"database_url": "postgresql://u:p@db/flipkart"},
    {"redis_url": "redis://cache:6379/0"},
    {"database_url": "postgresql://u:p@db/flipkart", "redis_url": "redis://cache:6379/0"},
]
WEAK: list[str | None] = [
    *sorted(PLACEHOLDER_SECRETS),
    None,
    "",
    "q" * (MIN_SECRET_LENGTH - 1),  # one short
    "Change_Me-" + "q" * MIN_SECRET_LENGTH,  # long, but a placeholder in disguise
    "x" * 10 + "CHANGEME" + "x" * 30,
]


@pytest.mark.parametrize("env", ["development", "test"])
@pytest.mark.parametrize("key", [None, "short", "changeme"], ids=repr)
def test_no_server_url_the_dev_key_or_any_key_is_allowed(env: str, key: str | None) -> None:
    settings = load_settings(app_env=env, secret_key=key)
    assert settings.effective_secret_key == (key or DEV_SECRET_KEY)


@pytest.mark.parametrize("servers", SERVERS, ids=lambda s: "+".join(s))
@pytest.mark.parametrize("key", WEAK, ids=repr)
def test_any_server_url_without_a_strong_key_is_a_config_error(
    servers: dict[str, Any], key: str | None
) -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY of at least 32"):
        load_settings(app_env="development", secret_key=key, **servers)


@pytest.mark.parametrize("servers", SERVERS, ids=lambda s: "+".join(s))
def test_any_server_url_with_a_strong_key_starts(servers: dict[str, Any]) -> None:
    assert load_settings(secret_key=STRONG, **servers).effective_secret_key == STRONG


@pytest.mark.parametrize("key", WEAK, ids=repr)
def test_production_needs_a_strong_key_too(key: str | None) -> None:
    with pytest.raises(ConfigError, match="APP_ENV=production requires SECRET_KEY"):
        load_settings(app_env="production", database_url="postgresql://db/f", secret_key=key)


def test_production_without_a_database_is_refused_first() -> None:
    with pytest.raises(ConfigError, match="requires DATABASE_URL"):
        load_settings(app_env="production", secret_key=STRONG)


def test_the_key_can_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rule reads the real variables (the conftest cleared them; set them again here)."""
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/0")
    with pytest.raises(ConfigError):
        load_settings()
    monkeypatch.setenv("SECRET_KEY", STRONG)
    assert load_settings().effective_secret_key == STRONG
