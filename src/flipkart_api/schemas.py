"""Schema pieces shared by every domain package."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator


class StrictModel(BaseModel):
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
