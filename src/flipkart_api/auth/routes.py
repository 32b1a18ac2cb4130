"""HTTP endpoints for accounts and tokens, and the bearer auth every protected route uses."""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint, HTTPTokenAuth
from apiflask.exceptions import HTTPError
from flask import current_app, g
from flask.sansio.blueprints import BlueprintSetupState

from .. import db
from ..limits import limit_from_settings, limiter
from ..responses import respond
from . import service
from .models import User
from .schemas import LogoutIn, PasswordChangeIn, RegisterIn, TokenIn, TokenOut, UserOut
from .security import AccessClaims, TokenRejected

bp = APIBlueprint("auth", __name__, url_prefix="/api/v1", tag="Auth")

# What a 401 says, by the reason verify_token found (no reason: no bearer token at all).
MISSING_BEARER_DETAIL = (
    "This endpoint needs a bearer token: send Authorization: Bearer <access_token> "
    "(from POST /api/v1/auth/token)."
)
REJECTED_BEARER_DETAIL = {
    "malformed": "The bearer token is malformed: it is not a JWT.",
    "expired": "The bearer token has expired; get a new one from POST /api/v1/auth/token.",
    "signature": "The bearer token's signature is invalid.",
    "audience": "The bearer token was issued for another service (wrong issuer or audience).",
    "invalid": "The bearer token is invalid (wrong algorithm, type or claims).",
    "revoked": "The bearer token has been revoked (logout, password or role change); "
    "sign in again.",
    "unknown user": "The bearer token's user no longer exists.",
}


class BearerAuth(HTTPTokenAuth):
    """apiflask's token auth that remembers the roles a route needs, for the 403's detail."""

    def authorize(self, role: Any, user: Any, auth: Any) -> Any:
        """Flask-HTTPAuth's role check; `role` is the route's `roles=[...]`."""
        g.auth_roles_needed = role
        return super().authorize(role, user, auth)


# Unbound like any extension; the app's error processor renders its 401/403s.
bearer = BearerAuth(scheme="Bearer", description="A token from POST /api/v1/auth/token")


@bp.record_once
def _init(state: BlueprintSetupState) -> None:
    service.init_app(state.app)


@bearer.verify_token  # type: ignore[untyped-decorator]
def _verify(token: str) -> User | None:
    """The token's user, or None with the reason stashed for the 401."""
    try:
        holder = service.user_for_token(db.session(), token)
    except TokenRejected as exc:
        g.auth_rejected = exc.reason
        return None
    g.auth_claims = holder.claims
    return holder.user


@bearer.get_user_roles  # type: ignore[untyped-decorator]
def _roles(user: User) -> list[str]:
    return [user.role]


@bearer.error_processor
def _auth_error(error: HTTPError) -> Any:
    """401 naming what is wrong with the token; 403 naming the role the operation needs."""
    if error.status_code == 403:
        roles = [str(role) for role in g.get("auth_roles_needed") or []]
        detail = f"This operation needs the {' or '.join(roles) or 'right'} role."
        return current_app.error_callback(HTTPError(403, detail))  # type: ignore[attr-defined]
    reason = g.get("auth_rejected")
    if reason is None:
        return current_app.error_callback(HTTPError(401, MISSING_BEARER_DETAIL))  # type: ignore[attr-defined]
    # RFC 6750: a token was sent and is unusable.
    headers = {"WWW-Authenticate": f'{bearer.authenticate_header()}, error="invalid_token"'}
    detail = REJECTED_BEARER_DETAIL.get(reason, REJECTED_BEARER_DETAIL["invalid"])
    return current_app.error_callback(HTTPError(401, detail, headers=headers))  # type: ignore[attr-defined]


def current_user() -> User:
    """The authenticated user of this request (only inside an auth_required view)."""
    user = bearer.current_user
    assert isinstance(user, User), "current_user() outside an auth_required view"  # noqa: S101
    return user


def current_claims() -> AccessClaims:
    """The claims of this request's bearer token (only inside an auth_required view)."""
    claims = g.get("auth_claims")
    assert isinstance(claims, AccessClaims), "current_claims() outside auth_required"  # noqa: S101
    return claims


@bp.post("/auth/register")
@limiter.limit(limit_from_settings("ratelimit_register"))
@bp.input(RegisterIn, arg_name="data")
@bp.output(UserOut, status_code=201)
@bp.doc(responses=[409, 422, 429, 503])
def register(data: RegisterIn) -> Any:
    """Create a customer account."""
    return respond(service.register(db.session(), data), status=201)


@bp.post("/auth/token")
@limiter.limit(limit_from_settings("ratelimit_token"))
@bp.input(TokenIn, arg_name="data")
@bp.output(TokenOut)
@bp.doc(responses=[401, 422, 429, 503])
def token(data: TokenIn) -> Any:
    """Exchange email and password for a bearer token."""
    return respond(service.issue_token(db.session(), data))


@bp.post("/auth/logout")
@bp.auth_required(bearer)
# A JSON body like every other body operation: {} is this token, {"all": true} every token.
@bp.input(LogoutIn, arg_name="data")
@bp.output({}, status_code=204)
@bp.doc(responses=[401, 422])
def logout(data: LogoutIn) -> Any:
    """Revoke this token, or with {"all": true} every token of the user."""
    service.logout(db.session(), current_claims(), everywhere=data.all)
    return respond(None)


@bp.get("/users/me")
@bp.auth_required(bearer)
@bp.output(UserOut)
def me() -> Any:
    """The authenticated user."""
    return respond(UserOut.model_validate(current_user()))


@bp.post("/users/me/password")
@bp.auth_required(bearer)
@limiter.limit(limit_from_settings("ratelimit_token"))
@bp.input(PasswordChangeIn, arg_name="data")
@bp.output(TokenOut)
@bp.doc(responses=[401, 422, 429, 503])
def change_password(data: PasswordChangeIn) -> Any:
    """Change the password; every existing token is revoked and a fresh one is returned."""
    return respond(service.change_password(db.session(), current_user().id, data))
