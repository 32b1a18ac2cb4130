"""Use cases for accounts: register, sign in, resolve and revoke tokens, passwords, roles."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from flask.sansio.app import App
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from .. import db
from ..errors import InvalidInput, NotFound, Unauthorized
from ..events.outbox import publish
from ..orm import utcnow
from ..uow import UnitOfWork
from . import security
from .models import ROLES, RevokedToken, User
from .schemas import PasswordChangeIn, RegisterIn, TokenIn, TokenOut, UserOut, normalise_email
from .security import AccessClaims, PasswordHashing, TokenRejected, TokenSettings


@dataclass(frozen=True)
class TokenHolder:
    """Who a valid bearer token names: the live user, and the token's claims."""

    user: User
    claims: AccessClaims


@dataclass(frozen=True)
class AdminAccount:
    """The admin create_admin made or promoted, and whether it was created."""

    user: UserOut
    created: bool


def init_app(app: App) -> None:
    """One bounded hasher per app, which is one per worker process."""
    limit = app.config["SETTINGS"].password_hash_concurrency
    app.extensions["password_hashing"] = PasswordHashing(limit)


def _hashing() -> PasswordHashing:
    hashing: PasswordHashing = current_app.extensions["password_hashing"]
    return hashing


def _token_settings() -> TokenSettings:
    settings = current_app.config["SETTINGS"]
    return TokenSettings(
        secret=settings.effective_secret_key,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        expires_seconds=settings.jwt_expires_seconds,
    )


def _token_for(user_id: int, version: int) -> TokenOut:
    config = _token_settings()
    token = security.create_access_token(user_id, version, config)
    return TokenOut(access_token=token, expires_in=config.expires_seconds)


def _new_password_hash(password: str) -> str:
    """Length checked here too: the CLI reaches this without a request schema."""
    if not 8 <= len(password) <= 128:
        raise InvalidInput("password", "must be 8 to 128 characters long")
    return _hashing().hash(password)


def register(sess: Session, data: RegisterIn) -> UserOut:
    """Create a customer; the email is unique case-insensitively (stored lower-cased).

    A taken email is a 409 (uq_users_email, integrity.KNOWN).
    """
    password_hash = _hashing().hash(data.password)  # before the write lock, not under it
    user = User(email=data.email, name=data.name, password_hash=password_hash, role="customer")
    with UnitOfWork(sess) as uow:
        sess.add(user)
        sess.flush()  # the id, for the event
        publish(
            uow,
            "user.registered",
            f"user:{user.id}",
            {"user_id": user.id, "email": user.email, "name": user.name},
        )
    return UserOut.model_validate(user)


def issue_token(sess: Session, data: TokenIn) -> TokenOut:
    """Check credentials with equal work for unknown emails; one answer for every failure."""
    user = sess.scalar(select(User).where(User.email == data.email.strip().lower()))
    if user is None:
        _hashing().burn_verification_time(data.password)
        raise Unauthorized("Incorrect email or password.")
    matches, upgraded_hash = _hashing().verify(user.password_hash, data.password)
    if not matches:
        raise Unauthorized("Incorrect email or password.")
    user_id, version, old_hash = user.id, user.token_version, user.password_hash
    if upgraded_hash is not None:  # made with older argon2 parameters: store today's
        with UnitOfWork(sess):
            sess.execute(  # unless the password changed meanwhile
                update(User)
                .where(User.id == user_id, User.password_hash == old_hash)
                .values(password_hash=upgraded_hash)
            )
    return _token_for(user_id, version)


def user_for_token(sess: Session, token: str) -> TokenHolder:
    """The live user a token names, with its claims; TokenRejected says why not.

    One query loads the user and checks the denylist: a request pays no extra round trip
    for revocation.
    """
    claims = security.decode_access_token(token, _token_settings())
    revoked = select(RevokedToken.jti).where(RevokedToken.jti == claims.jti).exists()
    row = sess.execute(select(User, revoked).where(User.id == claims.user_id)).first()
    if row is None:
        raise TokenRejected("unknown user")
    user, is_revoked = row
    if is_revoked or user.token_version != claims.version:
        raise TokenRejected("revoked")
    return TokenHolder(user, claims)


def logout(sess: Session, claims: AccessClaims, *, everywhere: bool) -> None:
    """Revoke this token (denylisted until it expires), or every token of its user."""
    with UnitOfWork(sess):
        if everywhere:
            _bump_token_version(sess, claims.user_id)
            return
        row = {"jti": claims.jti, "user_id": claims.user_id, "expires_at": claims.expires_at}
        sess.execute(db.insert_ignoring_conflicts(sess, RevokedToken.__table__), [row])
        # Purged as we go: a denylisted token is only needed until it would have expired.
        sess.execute(delete(RevokedToken).where(RevokedToken.expires_at < utcnow()))


def change_password(sess: Session, user_id: int, data: PasswordChangeIn) -> TokenOut:
    """Set a new password, revoke every token, and hand back a fresh one for this client."""
    user = sess.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    matches, _ = _hashing().verify(user.password_hash, data.current_password)
    if not matches:
        raise InvalidInput("current_password", "is not the current password")
    password_hash = _new_password_hash(data.new_password)
    with UnitOfWork(sess):
        version = _bump_token_version(sess, user_id, password_hash=password_hash)
    return _token_for(user_id, version)


def _bump_token_version(sess: Session, user_id: int, **values: str) -> int:
    """Revoke every token the user holds (optionally changing more columns); the new version."""
    version: int | None = sess.scalar(
        update(User)
        .where(User.id == user_id)
        .values(token_version=User.token_version + 1, updated_at=utcnow(), **values)
        .returning(User.token_version)
    )
    if version is None:
        raise NotFound("No such user.")
    return version


def user_exists(sess: Session, email: str) -> bool:
    """True when an account has this email (any case)."""
    return _find_user(sess, email) is not None


def _find_user(sess: Session, email: str) -> User | None:
    """The user with this email (any case), if any."""
    return sess.scalar(select(User).where(User.email == email.strip().lower()))


def set_role(sess: Session, email: str, role: str) -> bool:
    """Give the user `role`, revoking their tokens when it changes; False when it had it."""
    if role not in ROLES:
        raise InvalidInput("role", f"must be one of {', '.join(ROLES)}")
    with UnitOfWork(sess):
        return _assign_role(sess, email, role)


def _assign_role(sess: Session, email: str, role: str) -> bool:
    user = _find_user(sess, email)
    if user is None:
        raise NotFound(f"No user with email {email.strip().lower()}.")
    if user.role == role:
        return False
    _bump_token_version(sess, user.id, role=role)
    return True


def create_admin(
    sess: Session,
    email: str,
    password: str | None,
    name: str = "Admin",
    *,
    reset_password: bool = False,
) -> AdminAccount:
    """Create an admin, or promote an existing user.

    An existing user's password changes only with `reset_password` (which, like a role
    change, revokes their tokens). The email must be one the API would accept. One unit of
    work: a reset password and the promotion commit together or not at all.
    """
    try:
        email = normalise_email(email)
    except ValueError:
        raise InvalidInput("email", "is not a valid email address") from None
    needs_hash = reset_password or not user_exists(sess, email)
    # Hashed before the write lock, not under it.
    password_hash = _new_password_hash(password) if needs_hash and password is not None else None
    with UnitOfWork(sess):
        user = _find_user(sess, email)
        if user is None:
            if password_hash is None:
                raise InvalidInput("password", "is required to create an account")
            user = User(email=email, name=name, password_hash=password_hash)
            user.role = "admin"
            sess.add(user)
            created = True
        else:
            created = False
            if reset_password:
                if password_hash is None:
                    raise InvalidInput("password", "is required to reset it")
                _bump_token_version(sess, user.id, password_hash=password_hash)
            _assign_role(sess, email, "admin")
    if not created:
        sess.refresh(user)  # the role and token version the UPDATEs wrote
    return AdminAccount(UserOut.model_validate(user), created)
