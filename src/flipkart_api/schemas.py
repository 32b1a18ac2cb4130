"""Schema pieces shared by every domain package."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, field_validator

MAX_ID = 2**63 - 1  # ids are BIGINT: anything above cannot exist (and PostgreSQL would raise)
# A row id in a body: a JSON integer (not "5", not 5.0) within BIGINT's range.
RowId = Annotated[StrictInt, Field(ge=1, le=MAX_ID)]
QUERY_TRUE, QUERY_FALSE = frozenset({"true", "1"}), frozenset({"false", "0"})


def _query_bool(value: Any) -> Any:
    """true/false/1/0 in any case; anything else (pydantic would take yes, on, t) is refused."""
    if isinstance(value, str):
        word = value.strip().lower()
        if word in QUERY_TRUE:
            return True
        if word in QUERY_FALSE:
            return False
        raise ValueError("must be true, false, 1 or 0")
    return value


# A boolean as people write it in a query string: ?in_stock=TRUE, ?in_stock=1.
QueryBool = Annotated[bool, BeforeValidator(_query_bool)]


class FieldError(ValueError):
    """A rule across fields, raised in a model validator, that says which field it blames.

    pydantic places a model validator's error on the model itself; the client is told the
    field named here instead (validation.py), the same one the service names on updates.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class CleanText(BaseModel):
    """Inputs whose strings carry no NUL: PostgreSQL text cannot store one (it was a 500)."""

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class StrictModel(CleanText):
    """Inputs reject unknown fields: a typo is an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class PatchModel(StrictModel):
    """Partial updates: a field may be left out, but not sent as null."""

    @field_validator("*", mode="after")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Runs only for fields the client actually sent (defaults are not validated).
        if value is None:
            raise ValueError("may not be null")
        return value
