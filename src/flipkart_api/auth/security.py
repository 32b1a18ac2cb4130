"""Password hashing (argon2id, bounded per process) and access tokens (JWT, HS256 pinned)."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import jwt
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from ..errors import Overloaded

# One algorithm, pinned on both sides: a token cannot choose `none` or switch to RS/HS confusion.
JWT_ALGORITHM = "HS256"

# OWASP's argon2id baseline (19 MiB, 2 passes, 1 lane): about 35 ms of CPU per hash here.
# The library default (64 MiB, 3 passes, 4 lanes) let 8 logins in one process reach 525 MiB,
# over a 512 MB replica. Hashes made with other parameters are upgraded at the next login.
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, type=Type.ID)


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash("not-a-real-password-only-for-equal-timing")


class PasswordHashing:
    """argon2id with at most `limit` hashes at once in this process; past it, Overloaded.

    Each hash holds 19 MiB while it runs and threads run them in parallel (argon2 releases
    the GIL), so the bound is what keeps a burst of logins inside the container's memory.
    Refusing at once (503 + Retry-After) beats queueing: a queued login holds a thread.
    """

    def __init__(self, limit: int) -> None:
        self._slots = threading.BoundedSemaphore(limit)

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the slots while a hash runs; Overloaded when none is free."""
        if not self._slots.acquire(blocking=False):
            raise Overloaded("Too many sign-ins are being checked right now; retry in a second.")
        try:
            yield
        finally:
            self._slots.release()

    def hash(self, password: str) -> str:
        """An argon2id hash with a random salt."""
        with self.slot():
            return _hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> tuple[bool, str | None]:
        """(matches, a new hash when the stored one uses old parameters, else None)."""
        with self.slot():
            try:
                _hasher.verify(password_hash, password)
            except (VerificationError, InvalidHashError):
                return False, None
            if _hasher.check_needs_rehash(password_hash):
                return True, _hasher.hash(password)
            return True, None

    def burn_verification_time(self, password: str) -> None:
        """Do the same work as a real check, so unknown emails answer as slowly as known ones."""
        with self.slot(), contextlib.suppress(VerificationError, InvalidHashError):
            _hasher.verify(_dummy_hash(), password)


@dataclass(frozen=True)
class TokenSettings:
    """What signs and scopes tokens: the key, issuer, audience and lifetime."""

    secret: str
    issuer: str
    audience: str
    expires_seconds: int


@dataclass(frozen=True)
class AccessClaims:
    """What a valid access token says: whose it is, its version and its id."""

    user_id: int
    version: int
    jti: str
    expires_at: dt.datetime


class TokenRejected(Exception):
    """A token that cannot be used; `reason` is one of REASONS (for the 401's detail)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def create_access_token(user_id: int, version: int, config: TokenSettings) -> str:
    """A signed token naming the user and their token version; it expires."""
    now = dt.datetime.now(dt.UTC)
    claims = {
        "sub": str(user_id),
        "ver": version,
        "jti": secrets.token_urlsafe(16),
        "iss": config.issuer,
        "aud": config.audience,
        "iat": now,
        "exp": now + dt.timedelta(seconds=config.expires_seconds),
        "typ": "access",
    }
    return jwt.encode(claims, config.secret, algorithm=JWT_ALGORITHM)


def decode_access_token(token: str, config: TokenSettings) -> AccessClaims:
    """The claims of a valid, unexpired access token; TokenRejected says why not."""
    try:
        claims = jwt.decode(
            token,
            config.secret,
            algorithms=[JWT_ALGORITHM],
            issuer=config.issuer,
            audience=config.audience,
            options={"require": ["sub", "exp", "iat", "iss", "aud", "jti"]},
        )
    except jwt.ExpiredSignatureError:  # checked only after the signature: never for forgeries
        raise TokenRejected("expired") from None
    except jwt.InvalidSignatureError:
        raise TokenRejected("signature") from None
    except (jwt.InvalidIssuerError, jwt.InvalidAudienceError):
        raise TokenRejected("audience") from None
    except jwt.DecodeError:
        raise TokenRejected("malformed") from None
    except jwt.PyJWTError:  # `none` or another algorithm, missing claims, not yet valid
        raise TokenRejected("invalid") from None
    try:
        if claims.get("typ") != "access":
            raise ValueError
        version, jti = claims.get("ver"), claims["jti"]
        if not isinstance(version, int) or not isinstance(jti, str):
            raise ValueError
        expires_at = dt.datetime.fromtimestamp(claims["exp"], dt.UTC)
        return AccessClaims(int(claims["sub"]), version, jti, expires_at)
    except (TypeError, ValueError):
        raise TokenRejected("invalid") from None
