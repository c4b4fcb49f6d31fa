"""When to try a temporarily failed delivery again: exponential backoff with jitter.

Pure: no clock, no sleep. The random source is a field so tests can pin it. Jitter spreads the
retries of a batch that failed together (a 421 from a busy server, say) so they do not return
together: "full" draws from [0, backoff], "equal" from [backoff/2, backoff] (never retries at
once), "none" is plain exponential backoff.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

Jitter = Literal["full", "equal", "none"]


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    initial: float = 1.0
    factor: float = 2.0
    cap: float = 60.0
    jitter: Jitter = "full"
    later: float = 3600.0
    """Seconds until a later `newsletter send` may try a row that used up its attempts."""
    uniform: Callable[[float, float], float] = field(default=random.uniform, compare=False,
                                                     repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial < 0 or self.factor < 1 or self.cap < 0 or self.later < 0:
            raise ValueError("initial, cap and later must be >= 0 and factor >= 1")
        if self.jitter not in ("full", "equal", "none"):
            raise ValueError(f"jitter must be full, equal or none, not {self.jitter!r}")

    def backoff(self, attempt: int) -> float:
        """The ceiling before jitter after `attempt` attempts (1 = the first try failed)."""
        exponent = min(max(attempt, 1) - 1, 200)
        return float(min(self.cap, self.initial * self.factor ** exponent))

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt `attempt + 1`; never sooner than the server asked."""
        ceiling = self.backoff(attempt)
        if self.jitter == "full":
            wait = self.uniform(0.0, ceiling)
        elif self.jitter == "equal":
            wait = ceiling / 2 + self.uniform(0.0, ceiling / 2)
        else:
            wait = ceiling
        if retry_after is not None and retry_after > wait:
            return float(retry_after)
        return wait

    def gives_up(self, attempts: int) -> bool:
        """True once `attempts` tries have been made: no more retries within this run."""
        return attempts >= self.max_attempts
