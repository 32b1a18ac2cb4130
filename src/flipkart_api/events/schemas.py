"""Request and response models for webhook endpoints and their delivery log."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, StrictBool, StringConstraints

from ..schemas import PatchModel, StrictModel
from .outbox import EVENT_TYPES
from .webhook_urls import MAX_URL_LENGTH

DeliveryStatus = Literal["pending", "delivered", "dead"]
MAX_ATTEMPT_LOG = 50  # a delivery's detail shows at most its last this many attempts


def _known_type(value: str) -> str:
    if value not in EVENT_TYPES:
        raise ValueError(f"unknown event type {value!r}; one of {', '.join(EVENT_TYPES)}")
    return value


def _canonical_types(value: list[str]) -> list[str]:
    """Each type once, in EVENT_TYPES' order: what is stored does not depend on how it was sent."""
    return sorted(set(value), key=EVENT_TYPES.index)


EventType = Annotated[
    str, AfterValidator(_known_type), Field(json_schema_extra={"enum": list(EVENT_TYPES)})
]
# Empty means every event type, present and future.
EventTypes = Annotated[
    list[EventType],
    Field(max_length=len(EVENT_TYPES) * 2, description="Empty: every event type"),
    AfterValidator(_canonical_types),
]
# Checked for safety (scheme, credentials, private addresses) by the service: that rule
# depends on WEBHOOK_ALLOW_PRIVATE, which a schema does not know.
WebhookUrl = Annotated[str, StringConstraints(min_length=1, max_length=MAX_URL_LENGTH)]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]


class WebhookIn(StrictModel):
    """A new webhook endpoint."""

    url: WebhookUrl
    event_types: EventTypes = Field(default_factory=list)
    description: Description = ""
    enabled: StrictBool = True


class WebhookPatch(PatchModel):
    """A partial update of an endpoint; the same rules as on creation."""

    url: WebhookUrl | None = None
    event_types: EventTypes | None = None
    description: Description | None = None
    enabled: StrictBool | None = None


class WebhookOut(BaseModel):
    """An endpoint as listed and read: never its secret."""

    id: int
    url: str
    event_types: list[str] = Field(description="Empty: every event type")
    description: str
    enabled: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class WebhookWithSecret(WebhookOut):
    """An endpoint with its signing secret: shown on creation and on rotation only."""

    secret: str = Field(description="Standard Webhooks signing secret (whsec_...)")


class WebhookList(BaseModel):
    """Every webhook endpoint, oldest first."""

    items: list[WebhookOut]


class DeliveryQuery(StrictModel):
    """Filter and paging of an endpoint's delivery log."""

    status: DeliveryStatus | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    cursor: Annotated[str, StringConstraints(min_length=1, max_length=512)] | None = None


class DeliveryOut(BaseModel):
    """One event for one endpoint, and where its delivery stands."""

    id: int
    event_id: str = Field(description="The event's stable id (the webhook-id header)")
    event_type: str
    subject: str
    status: DeliveryStatus
    attempts: int = Field(description="Attempts since it was created or last redelivered")
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: dt.datetime | None = Field(description="Set while pending only")
    created_at: dt.datetime
    delivered_at: dt.datetime | None


class AttemptOut(BaseModel):
    """One try at a delivery."""

    attempted_at: dt.datetime
    ok: bool
    status_code: int | None
    latency_ms: float
    error: str | None
    response_snippet: str


class DeliveryDetail(DeliveryOut):
    """A delivery with its attempts, oldest first (the last MAX_ATTEMPT_LOG of them)."""

    attempt_log: list[AttemptOut]


class DeliveryPage(BaseModel):
    """One page of an endpoint's deliveries, newest first."""

    items: list[DeliveryOut]
    next_cursor: str | None
