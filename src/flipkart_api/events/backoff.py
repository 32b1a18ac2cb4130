"""When a failed delivery is tried again: exponential backoff with jitter, then dead.

The n-th retry waits base * 2**(n-1) seconds, capped, times a random factor in [0.9, 1.1]
so that receivers coming back are not hit by every worker at once. The defaults (10 s,
6 h cap, 16 attempts) spread the attempts over about 29 hours, at least 26 with the
jitter at its lowest: a receiver down for a day still gets everything.
"""

from __future__ import annotations

import random

JITTER = 0.1


def retry_delay(attempts: int, base: float, cap: float) -> float:
    """Seconds to wait after the `attempts`-th failed attempt (1 = the first)."""
    nominal = min(cap, base * 2.0 ** min(attempts - 1, 60))
    return nominal * random.uniform(1 - JITTER, 1 + JITTER)  # noqa: S311 - not cryptographic


def schedule_span(max_attempts: int, base: float, cap: float) -> float:
    """The shortest time from the first attempt to the last (every jitter at its lowest)."""
    return sum(min(cap, base * 2.0 ** (n - 1)) for n in range(1, max_attempts)) * (1 - JITTER)
