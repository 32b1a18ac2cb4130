"""The order lifecycle: the one table of allowed status transitions."""

from __future__ import annotations

from typing import Literal

Status = Literal["placed", "confirmed", "shipped", "delivered", "cancelled"]

TRANSITIONS: dict[str, frozenset[str]] = {
    "placed": frozenset({"confirmed", "cancelled"}),
    "confirmed": frozenset({"shipped", "cancelled"}),
    "shipped": frozenset({"delivered"}),
    "delivered": frozenset(),
    "cancelled": frozenset(),
}


def can_move(current: str, target: str) -> bool:
    """True when `current -> target` is an allowed transition."""
    return target in TRANSITIONS.get(current, frozenset())
