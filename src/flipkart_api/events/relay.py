"""The relay (PostgreSQL): the worker's loop that turns committed events into deliveries.

A write only inserts its event (outbox.py); this loop finds it within RELAY_POLL_SECONDS
and fans it out (fanout.fan_out_pending: its deliveries and their jobs, in one
transaction, a batch at a time). Every worker runs it; one at a time gets the lock, the
others find nothing to do. A failure (the database away) is logged and tried again after
1, 2, 4 ... 30 s; no event is lost meanwhile, it waits in the table.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .fanout import BATCH, fan_out_pending

log = logging.getLogger(__name__)
RELAY_POLL_SECONDS = 0.1  # the lag it adds at most; the look is an index probe, ~0.1 ms
MAX_BACKOFF_SECONDS = 30.0


def relay_once(flask_app: Any) -> int:
    """One batch; how many events it took."""
    from .. import db

    with flask_app.app_context():
        taken, _ = fan_out_pending(db.session(), flask_app.config["SETTINGS"])
    return taken


async def relay(flask_app: Any) -> None:
    """Until cancelled: a batch, then at once another if it was full, else a short sleep."""
    backoff = 1.0
    while True:
        try:
            taken = await asyncio.to_thread(relay_once, flask_app)
        except Exception as exc:  # whatever it was, the events wait in the table
            log.warning("relay: %r; trying again in %.0f s", exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            continue
        backoff = 1.0
        if taken < BATCH:
            await asyncio.sleep(RELAY_POLL_SECONDS)
