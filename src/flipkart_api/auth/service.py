"""Use cases for accounts: register, issue tokens, resolve tokens, create admins."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import db
from ..errors import Conflict, Unauthorized
from . import security
from .models import User
from .schemas import RegisterIn, TokenIn, TokenOut


def register(data: RegisterIn) -> User:
    """Create a customer; the email is unique case-insensitively (stored lower-cased)."""
    sess = db.begin_write()
    user = User(
        email=data.email,
        name=data.name,
        password_hash=security.hash_password(data.password),
        role="customer",
    )
    sess.add(user)
    try:
        sess.commit()
    except IntegrityError:
        sess.rollback()
        raise Conflict("An account with this email already exists.") from None
    return user


def issue_token(data: TokenIn) -> TokenOut:
    """Check credentials with equal work for unknown emails; one answer for every failure."""
    user = db.session().scalar(select(User).where(User.email == data.email.strip().lower()))
    if user is None:
        security.burn_verification_time(data.password)
        raise Unauthorized("Incorrect email or password.")
    if not security.verify_password(user.password_hash, data.password):
        raise Unauthorized("Incorrect email or password.")
    settings = current_app.config["SETTINGS"]
    token = security.create_access_token(
        user.id, settings.effective_secret_key, settings.jwt_expires_seconds
    )
    return TokenOut(access_token=token, expires_in=settings.jwt_expires_seconds)


def user_for_token(token: str) -> User | None:
    """The live user a token names; None for bad, expired or orphaned tokens."""
    settings = current_app.config["SETTINGS"]
    user_id = security.decode_access_token(token, settings.effective_secret_key)
    if user_id is None:
        return None
    return db.session().get(User, user_id)


def create_admin(
    sess: Session, email: str, password: str, name: str = "Admin"
) -> tuple[User, bool]:
    """Create an admin, or promote (and re-password) an existing user; returns (user, created)."""
    email = email.strip().lower()
    user = sess.scalar(select(User).where(User.email == email))
    created = user is None
    if user is None:
        user = User(email=email, name=name, password_hash="", role="admin")
        sess.add(user)
    user.role = "admin"
    if not security.verify_password(user.password_hash, password):
        user.password_hash = security.hash_password(password)
    sess.commit()
    return user, created
