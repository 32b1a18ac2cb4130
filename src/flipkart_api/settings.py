"""The one settings object: read once from the environment, validated, then passed around."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .secret_rule import DEV_SECRET_KEY, MIN_SECRET_LENGTH, is_strong_secret

# A stolen token is good until it expires (or is revoked): a day at most.
MAX_JWT_EXPIRES_SECONDS = 86400
LOG_FORMATS = ("text", "json")


class ConfigError(Exception):
    """The environment describes a configuration the service refuses to run with."""


class Settings(BaseSettings):
    """Every knob of the service; names match the environment variables (upper case)."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    app_env: Literal["development", "production", "test"] = "development"
    database_url: str | None = None
    redis_url: str | None = None
    secret_key: str | None = None
    cache_ttl_seconds: int = Field(default=300, ge=1)
    # Up to this fraction of the TTL is added at random so hot keys do not expire together.
    cache_ttl_jitter: float = Field(default=0.1, ge=0, le=1)
    # Redis is a cache: a slow one must cost a request ~100 ms at most, never a timeout.
    redis_timeout_seconds: float = Field(default=0.1, gt=0)
    db_pool_size: int = Field(default=5, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    db_pool_timeout_seconds: float = Field(default=5.0, gt=0)
    db_connect_timeout_seconds: int = Field(default=2, ge=1)
    # A PostgreSQL that stops answering without closing the connection (a network partition,
    # a failed-over primary, a frozen host) is given up on after about this long: the
    # request gets a 503 instead of waiting for the kernel's TCP timeout (15+ minutes).
    db_dead_peer_seconds: int = Field(default=4, ge=2, le=600)
    # /health checks the database and Redis at most this often per worker (0 = every call),
    # so monitors and load balancers polling it cannot turn into load on the database.
    health_cache_seconds: float = Field(default=1.0, ge=0, le=60)
    jwt_expires_seconds: int = Field(default=3600, ge=60)
    # Set in every token and required on every token read: a token minted for another
    # service sharing the key (or an older deployment) is refused.
    jwt_issuer: str = Field(default="flipkart-api", min_length=1)
    jwt_audience: str = Field(default="flipkart-api", min_length=1)
    # argon2 hashes running at once in one process (each holds 19 MiB); past this a login
    # or sign-up answers 503 at once instead of growing the process (docs/decisions.md).
    password_hash_concurrency: int = Field(default=2, ge=1, le=64)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # `text` (a line for people) or `json` (one object per line for a log shipper; then the
    # app writes its own access line and granian's is off: logs.py, access_log.py).
    log_format: Literal["text", "json"] = "text"
    host: str = "0.0.0.0"  # noqa: S104 - inside a container the app must listen on all interfaces
    port: int = Field(default=5000, ge=1, le=65535)
    web_concurrency: int = Field(default=2, ge=1)
    web_threads: int = Field(default=4, ge=1)
    instance_dir: Path = Path("instance")
    # How many reverse proxies (nginx) sit in front and may set X-Forwarded-*; 0 = none.
    proxy_hops: int = Field(default=0, ge=0, le=5)
    # granian --reload, for the dev container with the source bind-mounted.
    web_reload: bool = False
    # One line per request from each replica. Unset: on, except in production, where nginx's
    # edge log has every request with the same request id and the app's line cost 135 us of
    # CPU per request (30% of a cached read; docs/decisions.md).
    access_log: bool | None = None
    # /metrics (Prometheus) and the per-request counting behind it; false: neither.
    metrics_enabled: bool = True
    # The source revision this build runs (the image sets it from its REVISION build arg);
    # on flipkart_build_info beside the version. Any text: a label never stops a start.
    app_revision: str = Field(default="unknown", max_length=128)
    # Per-client limits (Flask-Limiter syntax); RATELIMIT_ENABLED=false turns them all off.
    ratelimit_enabled: bool = True
    ratelimit_register: str = "10/minute"
    ratelimit_token: str = "20/minute"  # noqa: S105 - a rate, not a secret
    ratelimit_orders: str = "60/minute"
    # Where the counters live: a Redis that never evicts (the cache Redis is allkeys-lru, and
    # filling it would drop counters). Unset: REDIS_URL (warned about in production).
    ratelimit_redis_url: str | None = None
    idempotency_ttl_hours: int = Field(default=24, ge=1)
    # The HTTP cache in front (Varnish): where to send purges, comma-separated base URLs
    # (`http://varnish:80`); a name is resolved on every purge and each of its addresses is
    # purged (Swarm's tasks.varnish, a Kubernetes headless Service). Unset: no HTTP cache,
    # and catalog answers tell shared caches to revalidate every time (no s-maxage).
    edge_purge_urls: str = ""
    # How long the HTTP cache may serve a catalog answer without asking (s-maxage). Also the
    # bound on staleness when a purge cannot reach an instance (docs/reliability.md).
    edge_ttl_seconds: int = Field(default=60, ge=1, le=86400)
    edge_purge_timeout_seconds: float = Field(default=0.5, gt=0, le=10)
    # Stock held by one customer's unconfirmed ('placed') orders: at most this many orders
    # and units at once, so nobody can reserve the catalog without paying (0 = no cap).
    orders_max_open: int = Field(default=5, ge=0, le=1000)
    orders_max_open_units: int = Field(default=50, ge=0, le=100_000)
    # SMTP_URL: smtp://[user:pass@]host[:25], smtp+starttls://...:587, smtps://...:465; unset:
    # no order emails (webhooks still go out). Events: docs/reliability.md.
    smtp_url: str | None = None
    mail_from: str = Field(default="flipkart-api <orders@flipkart-api.invalid>", min_length=3)
    smtp_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    webhook_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # false: writes publish no events (nothing is emailed or sent; the bench's baseline).
    events_enabled: bool = True
    # Webhooks to loopback, private or link-local addresses are refused (SSRF) unless this.
    webhook_allow_private: bool = False
    # Retries after 10 s, 20 s, ... 6 h (jitter): 16 attempts span ~29 h (events/backoff.py).
    delivery_max_attempts: int = Field(default=16, ge=1, le=100)
    delivery_retry_base_seconds: float = Field(default=10.0, gt=0, le=3600)
    delivery_retry_max_seconds: float = Field(default=21600.0, gt=0, le=86400)
    # The worker (flipkart-api worker): jobs at once, and where its probes and metrics are.
    worker_concurrency: int = Field(default=4, ge=1, le=64)
    worker_health_host: str = "0.0.0.0"  # noqa: S104 - probes come from outside the container
    worker_health_port: int = Field(default=8001, ge=1, le=65535)
    # How often the worker looks for due work (retries) besides being told of new events.
    worker_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    # A worker silent this long is dead, and its running jobs are queued again.
    worker_stalled_seconds: float = Field(default=15.0, ge=3, le=3600)
    # A delivering thread in each server (SQLite only). Unset: on for SQLite outside tests.
    worker_embedded: bool | None = None
    # Housekeeping: 'placed' orders not confirmed within this are cancelled and their stock
    # restored (0 = never); delivered events and their attempts are kept this long.
    order_confirm_timeout_minutes: int = Field(default=1440, ge=0, le=525_600)
    event_retention_days: int = Field(default=30, ge=1, le=3650)
    # An order that leaves a product with this much stock or less publishes stock.low.
    stock_low_threshold: int = Field(default=5, ge=0, le=1_000_000)

    # Docker/Swarm/Kubernetes secrets arrive as files: SECRET_KEY_FILE=/run/secrets/secret_key.
    secret_key_file: Path | None = None
    database_url_file: Path | None = None
    redis_url_file: Path | None = None
    ratelimit_redis_url_file: Path | None = None
    smtp_url_file: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: Any) -> Any:
        """A *_FILE variable fills its plain twin when that is not set."""
        if not isinstance(data, dict):
            return data
        for name in ("secret_key", "database_url", "redis_url", "ratelimit_redis_url", "smtp_url"):
            path = data.get(f"{name}_file")
            if path and not data.get(name):
                try:
                    data[name] = Path(path).read_text().strip()
                except OSError as exc:
                    raise ConfigError(
                        f"{name.upper()}_FILE={path} cannot be read: {exc.strerror}"
                    ) from None
        return data

    @field_validator("log_format", mode="before")
    @classmethod
    def _known_log_format(cls, value: Any) -> Any:
        """LOG_FORMAT in any case; anything else refuses to start in one line."""
        if isinstance(value, str) and value.strip().lower() in LOG_FORMATS:
            return value.strip().lower()
        raise ConfigError(f"LOG_FORMAT={value} is not one of: {', '.join(LOG_FORMATS)}")

    @model_validator(mode="after")
    def _refuse_insecure_config(self) -> Settings:
        """No silent fallbacks: production needs a database, servers need a real secret."""
        if self.app_env == "production" and not self.database_url:
            raise ConfigError("APP_ENV=production requires DATABASE_URL")
        if self.jwt_expires_seconds > MAX_JWT_EXPIRES_SECONDS:
            raise ConfigError(
                f"JWT_EXPIRES_SECONDS={self.jwt_expires_seconds} is above the limit of "
                f"{MAX_JWT_EXPIRES_SECONDS} (one day)"
            )
        if is_strong_secret(self.secret_key or ""):
            return self
        if self.app_env == "production":
            needs = "APP_ENV=production requires"
        elif self.database_url or self.redis_url:
            # Replicas must verify each other's tokens: a random per-process key is no answer.
            needs = "DATABASE_URL or REDIS_URL is set, so the dev-only key may not sign; set"
        else:
            return self  # the embedded default (SQLite, in-process cache): the dev-only key
        raise ConfigError(
            f"{needs} SECRET_KEY of at least {MIN_SECRET_LENGTH} random characters: "
            "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )

    @property
    def is_development(self) -> bool:
        """True for the embedded default (SQLite + in-process cache) unless URLs are given."""
        return self.app_env == "development"

    @property
    def effective_access_log(self) -> bool:
        """ACCESS_LOG, or on everywhere but production."""
        return self.access_log if self.access_log is not None else self.app_env != "production"

    @property
    def effective_database_url(self) -> str:
        """DATABASE_URL, or the development SQLite file under the instance directory."""
        if self.database_url:
            return normalise_database_url(self.database_url)
        return f"sqlite:///{(self.instance_dir / 'flipkart.sqlite3').resolve()}"

    @property
    def effective_secret_key(self) -> str:
        """SECRET_KEY, or the dev-only key on the embedded default (elsewhere refused above)."""
        return self.secret_key or DEV_SECRET_KEY

    @property
    def ratelimit_storage_uri(self) -> str:
        """Counters shared by every replica in Redis; per process without it."""
        return self.ratelimit_redis_url or self.redis_url or "memory://"

    @property
    def edge_purge_targets(self) -> tuple[str, ...]:
        """EDGE_PURGE_URLS as a tuple of base URLs (empty: no HTTP cache to purge)."""
        return tuple(
            url.strip().rstrip("/") for url in self.edge_purge_urls.split(",") if url.strip()
        )

    @property
    def effective_worker_embedded(self) -> bool:
        """WORKER_EMBEDDED, or on for SQLite outside tests (PostgreSQL: the worker service)."""
        if not self.uses_sqlite:
            return False
        return self.worker_embedded if self.worker_embedded is not None else self.app_env != "test"

    @property
    def uses_sqlite(self) -> bool:
        """True when the database is the embedded SQLite file."""
        return self.effective_database_url.startswith("sqlite")


def normalise_database_url(url: str) -> str:
    """Point plain postgres:// URLs (as Heroku/compose users write them) at psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def load_settings(**overrides: object) -> Settings:
    """Read the environment once; keyword overrides win (used by tests)."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ConfigError:
        raise
    except ValueError as exc:
        # pydantic wraps ConfigError raised inside a validator; unwrap it for a clean message.
        cause = exc.__cause__ or exc
        raise ConfigError(str(cause)) from exc
