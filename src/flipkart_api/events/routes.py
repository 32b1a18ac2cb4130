"""HTTP endpoints for webhook endpoints, their delivery log and redelivery (admin only)."""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint
from flask import current_app, url_for

from .. import db
from ..auth.routes import bearer
from ..responses import respond
from . import service
from .schemas import (
    DeliveryDetail,
    DeliveryOut,
    DeliveryPage,
    DeliveryQuery,
    WebhookIn,
    WebhookList,
    WebhookOut,
    WebhookPatch,
    WebhookWithSecret,
)

bp = APIBlueprint("webhooks", __name__, url_prefix="/api/v1", tag="Webhooks")
ADMIN = ["admin"]


def _allow_private() -> bool:
    """WEBHOOK_ALLOW_PRIVATE: whether endpoints may point at private and loopback addresses."""
    allowed: bool = current_app.config["SETTINGS"].webhook_allow_private
    return allowed


@bp.post("/webhooks")
@bp.auth_required(bearer, roles=ADMIN)
@bp.input(WebhookIn, arg_name="data")
@bp.output(WebhookWithSecret, status_code=201)
@bp.doc(responses=[403, 422])
def create_webhook(data: WebhookIn) -> Any:
    """Register a webhook endpoint; its signing secret is in this answer only (admin)."""
    endpoint = service.create_endpoint(db.session(), data, _allow_private())
    location = url_for("webhooks.get_webhook", endpoint_id=endpoint.id)
    return respond(endpoint, status=201, headers={"Location": location})


@bp.get("/webhooks")
@bp.auth_required(bearer, roles=ADMIN)
@bp.output(WebhookList)
@bp.doc(responses=[403])
def list_webhooks() -> Any:
    """Every webhook endpoint, oldest first, without secrets (admin)."""
    return respond(service.list_endpoints(db.session()))


@bp.get("/webhooks/<int:endpoint_id>")
@bp.auth_required(bearer, roles=ADMIN)
@bp.output(WebhookOut)
@bp.doc(responses=[403, 404])
def get_webhook(endpoint_id: int) -> Any:
    """One webhook endpoint, without its secret (admin)."""
    return respond(service.get_endpoint(db.session(), endpoint_id))


@bp.patch("/webhooks/<int:endpoint_id>")
@bp.auth_required(bearer, roles=ADMIN)
@bp.input(WebhookPatch, arg_name="data")
@bp.output(WebhookOut)
@bp.doc(responses=[403, 404, 422])
def update_webhook(endpoint_id: int, data: WebhookPatch) -> Any:
    """Change the URL, event types, description or enabled flag of an endpoint (admin)."""
    return respond(service.update_endpoint(db.session(), endpoint_id, data, _allow_private()))


@bp.delete("/webhooks/<int:endpoint_id>")
@bp.auth_required(bearer, roles=ADMIN)
@bp.output({}, status_code=204)
@bp.doc(responses=[403, 404])
def delete_webhook(endpoint_id: int) -> Any:
    """Delete an endpoint with its deliveries (admin)."""
    service.delete_endpoint(db.session(), endpoint_id)
    return respond(None)


@bp.post("/webhooks/<int:endpoint_id>/rotate-secret")
@bp.auth_required(bearer, roles=ADMIN)
@bp.output(WebhookWithSecret)
@bp.doc(responses=[403, 404])
def rotate_webhook_secret(endpoint_id: int) -> Any:
    """Replace the endpoint's signing secret; deliveries signed from now on use the new one."""
    return respond(service.rotate_secret(db.session(), endpoint_id))


@bp.get("/webhooks/<int:endpoint_id>/deliveries")
@bp.auth_required(bearer, roles=ADMIN)
@bp.input(DeliveryQuery, location="query", arg_name="query")
@bp.output(DeliveryPage)
@bp.doc(responses=[403, 404, 422])
def list_deliveries(endpoint_id: int, query: DeliveryQuery) -> Any:
    """The endpoint's deliveries, newest first, optionally of one status (admin)."""
    return respond(service.list_deliveries(db.session(), endpoint_id, query))


@bp.get("/webhooks/<int:endpoint_id>/deliveries/<int:delivery_id>")
@bp.auth_required(bearer, roles=ADMIN)
@bp.output(DeliveryDetail)
@bp.doc(responses=[403, 404])
def get_delivery(endpoint_id: int, delivery_id: int) -> Any:
    """One delivery with its last attempts, oldest first (admin)."""
    return respond(service.get_delivery(db.session(), endpoint_id, delivery_id))


@bp.post("/webhooks/<int:endpoint_id>/deliveries/<int:delivery_id>/redeliver")
@bp.auth_required(bearer, roles=ADMIN)
@bp.output(DeliveryOut, status_code=202)
@bp.doc(responses=[403, 404, 409])
def redeliver(endpoint_id: int, delivery_id: int) -> Any:
    """Queue a delivered or dead delivery again; 409 when pending or its endpoint is off (admin)."""
    return respond(service.redeliver(db.session(), endpoint_id, delivery_id), status=202)
