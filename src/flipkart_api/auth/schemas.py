"""Request and response models for users and tokens."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    TypeAdapter,
    field_validator,
)

from ..schemas import StrictModel

# One definition of a valid address and a valid new password, for the API and the CLI.
EmailAddress = Annotated[EmailStr, Field(max_length=320)]
NewPassword = Annotated[str, Field(min_length=8, max_length=128)]
_email_address: TypeAdapter[str] = TypeAdapter(EmailAddress)


def normalise_email(value: str) -> str:
    """The address lower-cased, as stored; ValueError when the API would refuse it."""
    return _email_address.validate_python(value).lower()


class RegisterIn(StrictModel):
    """A new customer account."""

    email: EmailAddress
    password: NewPassword
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class TokenIn(StrictModel):
    """Credentials for an access token."""

    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=128)


class LogoutIn(StrictModel):
    """Which tokens to revoke: this one (the default), or every token of the user."""

    all: bool = False


class PasswordChangeIn(StrictModel):
    """The current password (proof it is the owner, not a stolen token) and the new one."""

    current_password: str = Field(min_length=1, max_length=128)
    new_password: NewPassword


class TokenOut(BaseModel):
    """A bearer token."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - a scheme name, not a secret
    expires_in: int


class UserOut(BaseModel):
    """A user as the API shows it (never the password hash)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    name: str
    role: Literal["customer", "admin"]
    created_at: dt.datetime
