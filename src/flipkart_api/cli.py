"""The `flipkart-api` command: migrate, seed, create-admin, set-role, serve, worker, healthcheck."""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request
from typing import NoReturn

import click

# Only the light modules at import: `serve` and `healthcheck` (a probe, maybe run every few
# seconds) need neither the app nor SQLAlchemy.
from .settings import ConfigError, Settings, load_settings


def _settings(**overrides: object) -> Settings:
    """Settings or a clear message and exit code 2 (never a traceback for bad config)."""
    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(2)


@click.group()
@click.version_option(package_name="flipkart-api", message="%(prog)s %(version)s")
@click.pass_context
def main(ctx: click.Context) -> None:
    """flipkart-api: a storefront API."""
    if ctx.invoked_subcommand != "serve":
        from .server import MULTIPROC_ENV

        # Only the server's workers keep metrics in files (server.prepare_metrics); a
        # `migrate` or `seed` beside them must neither add to a replica's counts nor fail
        # for a directory that does not exist yet.
        os.environ.pop(MULTIPROC_ENV, None)


@main.command()
@click.option(
    "--wait",
    "wait_seconds",
    default=0,
    show_default=True,
    type=click.IntRange(0, 600),
    help="Keep retrying this long while the database is not reachable yet (orchestrators "
    "without depends_on, e.g. Swarm).",
)
@click.option("--quiet", "-q", is_flag=True, help="Say nothing on success (errors still).")
def migrate(wait_seconds: int, quiet: bool) -> None:
    """Upgrade the database schema to the latest revision (safe to run from many replicas)."""
    from sqlalchemy.exc import OperationalError

    from .migrate import upgrade

    settings = _settings()
    if settings.uses_sqlite:
        settings.instance_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            upgrade(settings.effective_database_url)
            break
        except OperationalError:
            if time.monotonic() >= deadline:
                click.echo("database unreachable; giving up", err=True)
                sys.exit(1)
            click.echo("database not reachable yet; retrying in 2 s", err=True)
            time.sleep(2)
    if not quiet:
        click.echo("database schema is at the latest revision")


@main.command()
@click.option("--products", default=1000, show_default=True, type=click.IntRange(0, 5_000_000))
@click.option("--if-empty", is_flag=True, help="Do nothing when any product exists.")
@click.option("--quiet", "-q", is_flag=True, help="Say nothing on success (errors still).")
def seed(products: int, if_empty: bool, quiet: bool) -> None:
    """Load the deterministic demo catalog (idempotent: re-running adds only what is missing)."""
    from sqlalchemy import func, select

    from . import create_app, db
    from .catalog.models import Product
    from .catalog.seed import seed_catalog, settle

    # Quiet also silences the app's start-up log line (`make run` prints it when serving).
    app = create_app(_settings(log_level="WARNING") if quiet else _settings())
    say = (lambda _: None) if quiet else click.echo
    with app.app_context():
        sess = db.session()
        if if_empty and sess.scalar(select(func.count()).select_from(Product)):
            say("catalog already has products; not seeding")
            return
        step = max(products // 10, 50_000)

        def progress(done: int) -> None:
            if done % step == 0 or done == products:
                say(f"  {done:,}/{products:,} products")

        added = seed_catalog(sess, products, progress)  # invalidates the cache as it commits
        if added:
            settle(db.engine())
    say(f"seeded: {added:,} new products")


@main.command("create-admin")
@click.option("--email", required=True)
@click.option(
    "--password",
    default=None,
    help="At least 8 characters. Else $ADMIN_PASSWORD, else asked twice on a terminal "
    "(a flag is visible in `ps` and shell history: prefer the other two).",
)
@click.option("--name", default="Admin", show_default=True)
@click.option(
    "--reset-password",
    is_flag=True,
    help="Also set the password of an existing user (revokes their tokens).",
)
def create_admin(email: str, password: str | None, name: str, reset_password: bool) -> None:
    """Create an admin, or promote an existing user (idempotent; keeps their password)."""
    from . import create_app, db
    from .auth.schemas import normalise_email
    from .auth.service import create_admin as create
    from .auth.service import user_exists
    from .errors import DomainError

    try:
        email = normalise_email(email)  # the API's rules, before anything is asked for
    except ValueError:
        _refuse("create-admin", f"--email {email!r} is not a valid email address")
    app = create_app(_settings())
    with app.app_context():
        sess = db.session()
        if reset_password or not user_exists(sess, email):
            password = _admin_password(password)
        else:
            password = None  # an existing user keeps theirs unless --reset-password
        try:
            account = create(sess, email, password, name, reset_password=reset_password)
        except DomainError as exc:
            _refuse("create-admin", exc.detail)
    created, user = account.created, account.user
    done = "created" if created else "promoted"
    kept = "" if created or reset_password else " (password unchanged; --reset-password sets it)"
    click.echo(f"{done} admin {user.email} (id {user.id}){kept}")


def _admin_password(flag: str | None) -> str:
    """--password, else $ADMIN_PASSWORD, else a prompt asked twice on a terminal; else exit 2."""
    import getpass

    password = flag or os.environ.get("ADMIN_PASSWORD")
    if not password and sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password (again): ") != password:
            _refuse("create-admin", "the two passwords differ")
    if not password:
        _refuse(
            "create-admin",
            "a password is needed: --password, ADMIN_PASSWORD, or run it on a terminal to type it",
        )
    if not 8 <= len(password) <= 128:
        _refuse("create-admin", "the password must be 8 to 128 characters long")
    return password


def _refuse(command: str, message: str) -> NoReturn:
    """One clear line on stderr and exit code 2, as for a bad configuration."""
    click.echo(f"{command}: {message}", err=True)
    sys.exit(2)


@main.command("set-role")
@click.option("--email", required=True)
@click.option("--role", required=True, type=click.Choice(["customer", "admin"]))
def set_role(email: str, role: str) -> None:
    """Make a user a customer or an admin; a change revokes the user's tokens."""
    from . import create_app, db
    from .auth.service import set_role as assign
    from .errors import DomainError

    app = create_app(_settings())
    with app.app_context():
        try:
            changed = assign(db.session(), email, role)
        except DomainError as exc:
            _refuse("set-role", exc.detail)
    said = f"now {role}; their tokens are revoked" if changed else f"already {role}"
    click.echo(f"{email.strip().lower()} is {said}")


@main.command()
@click.option("--host", default=None, help="Listen address; overrides HOST.")
@click.option("--port", default=None, type=click.IntRange(1, 65535), help="Overrides PORT.")
@click.option(
    "--announce/--no-announce",
    default=None,
    help="Print 'serving URL — docs at URL/docs' once the server answers. "
    "Default: when stdout is a terminal (`make run` always announces).",
)
def serve(host: str | None, port: int | None, announce: bool | None) -> None:
    """Run granian (WSGI): WEB_CONCURRENCY workers x WEB_THREADS threads; SIGTERM drains."""
    from .server import granian_argv, prepare_metrics
    from .startup import (
        EXIT_CANNOT_LISTEN,
        CannotListen,
        announce_when_ready,
        check_can_listen,
        local_url,
    )

    overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    settings = _settings(**overrides)
    argv = granian_argv(settings)  # fails fast with a clear message on bad settings
    try:
        check_can_listen(settings.host, settings.port)
    except CannotListen as exc:
        click.echo(str(exc), err=True)
        sys.exit(EXIT_CANNOT_LISTEN)
    if announce if announce is not None else sys.stdout.isatty():
        announce_when_ready(local_url(settings.host, settings.port))
    prepare_metrics(settings)
    # exec: the server becomes this process (PID 1 in a container) and gets SIGTERM itself.
    os.execv(sys.executable, [sys.executable, "-m", "granian", *argv])  # noqa: S606 - fixed argv


@main.command()
def worker() -> None:
    """Deliver events (order emails, signed webhooks) and keep house until SIGTERM."""
    from .events.worker import run_worker

    run_worker(_settings())


@main.command()
@click.option("--url", default=None, help="Defaults to http://127.0.0.1:$PORT/livez")
def healthcheck(url: str | None) -> None:
    """Exit 0 when the service answers /livez (for probes; the image's runs a stdlib one-liner)."""
    url = url or f"http://127.0.0.1:{_settings().port}/livez"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - our own URL
            sys.exit(0 if response.status == 200 else 1)
    except (urllib.error.URLError, OSError):
        sys.exit(1)
