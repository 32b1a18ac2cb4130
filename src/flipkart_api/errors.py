"""Domain errors: what a use case refuses, in words, knowing nothing of HTTP or Flask.

Services, the CLI and (next) the worker raise these; problems.py maps each kind to an HTTP
status and the problem+json shape, in one place (as cosmicpython's `OutOfStock` is mapped
at the entrypoint).
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every refusal; `detail` is said to the client, `errors` name the fields."""

    def __init__(self, detail: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors


class NotFound(DomainError):
    """The resource does not exist (or the caller may not know it exists)."""


class Conflict(DomainError):
    """The request clashes with the current state (duplicate, out of stock, bad transition)."""


class Unauthorized(DomainError):
    """Missing or bad credentials."""


class Overloaded(DomainError):
    """A bounded resource (password hashing) is busy: retry after `retry_after` seconds."""

    retry_after = 1


class InvalidInput(DomainError):
    """Input that passed the schema but breaks a rule only the service can check."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", [{"field": field, "message": message}])


class AmbiguousInput(DomainError):
    """Input that cannot be read one way (a single-valued query parameter sent twice)."""
