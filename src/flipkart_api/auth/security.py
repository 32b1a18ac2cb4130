"""Password hashing (argon2id) and access tokens (JWT, HS256 pinned)."""

from __future__ import annotations

import datetime as dt
import functools

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# One algorithm, pinned on both sides: a token cannot choose `none` or switch to RS/HS confusion.
JWT_ALGORITHM = "HS256"

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


def hash_password(password: str) -> str:
    """An argon2id hash with a random salt."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when the password matches; never raises for a wrong or malformed hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash("not-a-real-password-only-for-equal-timing")


def burn_verification_time(password: str) -> None:
    """Do the same work as a real check, so unknown emails answer as slowly as known ones."""
    verify_password(_dummy_hash(), password)


def create_access_token(user_id: int, secret: str, expires_seconds: int) -> str:
    """A signed token naming the user; it expires."""
    now = dt.datetime.now(dt.UTC)
    claims = {
        "sub": str(user_id),
        "iat": now,
        "exp": now + dt.timedelta(seconds=expires_seconds),
        "typ": "access",
    }
    return jwt.encode(claims, secret, algorithm=JWT_ALGORITHM)


def decode_access_token(token: str, secret: str) -> int | None:
    """The user id in a valid, unexpired access token, else None."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[JWT_ALGORITHM],
            options={"require": ["sub", "exp", "iat"]},
        )
    except jwt.PyJWTError:
        return None
    if claims.get("typ") != "access":
        return None
    try:
        return int(claims["sub"])
    except (TypeError, ValueError):
        return None
