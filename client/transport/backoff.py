"""Retry delays: exponential backoff with full jitter, time and randomness as parameters.

``delay(attempt, rng=...)`` is the wait before retry number ``attempt`` (1-based):
a uniform draw in ``[0, min(cap, base * 2**(attempt-1))]`` (full jitter, so many clients
that failed together do not retry together). ``rng`` returns a float in [0, 1).
"""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["BASE", "CAP", "delay"]

BASE = 2.0
CAP = 15 * 60.0


def delay(
    attempt: int,
    *,
    base: float = BASE,
    cap: float = CAP,
    rng: Callable[[], float] = random.random,
) -> float:
    if attempt < 1:
        return 0.0
    ceiling = min(cap, base * (2 ** min(attempt - 1, 30)))
    return float(ceiling * rng())
