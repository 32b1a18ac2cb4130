"""HTTP endpoints for accounts and tokens."""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint, HTTPTokenAuth

from ..limits import limit_from_settings, limiter
from . import service
from .models import User
from .schemas import RegisterIn, TokenIn, TokenOut, UserOut

bp = APIBlueprint("auth", __name__, url_prefix="/api/v1", tag="Auth")

# Unbound like any extension; the app's error processor renders its 401/403s.
bearer = HTTPTokenAuth(scheme="Bearer", description="A token from POST /api/v1/auth/token")


@bearer.verify_token  # type: ignore[untyped-decorator]
def _verify(token: str) -> User | None:
    return service.user_for_token(token) if token else None


@bearer.get_user_roles  # type: ignore[untyped-decorator]
def _roles(user: User) -> list[str]:
    return [user.role]


def current_user() -> User:
    """The authenticated user of this request (only inside an auth_required view)."""
    user = bearer.current_user
    assert isinstance(user, User), "current_user() outside an auth_required view"  # noqa: S101
    return user


@bp.post("/auth/register")
@limiter.limit(limit_from_settings("ratelimit_register"))
@bp.input(RegisterIn, arg_name="data")
@bp.output(UserOut, status_code=201)
@bp.doc(responses=[409, 422, 429])
def register(data: RegisterIn) -> Any:
    """Create a customer account."""
    return UserOut.model_validate(service.register(data))


@bp.post("/auth/token")
@limiter.limit(limit_from_settings("ratelimit_token"))
@bp.input(TokenIn, arg_name="data")
@bp.output(TokenOut)
@bp.doc(responses=[401, 422, 429])
def token(data: TokenIn) -> Any:
    """Exchange email and password for a bearer token."""
    return service.issue_token(data)


@bp.get("/users/me")
@bp.auth_required(bearer)
@bp.output(UserOut)
def me() -> Any:
    """The authenticated user."""
    return UserOut.model_validate(current_user())
