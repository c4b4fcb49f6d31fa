"""In-process sliding-window rate limits, keyed by client address or by target mailbox.

Each key keeps the times of its recent hits; a hit is allowed while fewer than `limit` fall inside
the last `window` seconds. Memory is bounded: at most `max_keys` keys are tracked, and the ones
idle longest are forgotten first.

The counts live in this process only. Behind a server with several processes (gunicorn workers,
several hosts) each process counts on its own, so the effective limit is `limit` times the number
of processes; a deployment that needs one shared limit should put the counts in a shared store
(Redis, the database) or rate limit at the reverse proxy as well.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["SlidingWindowLimiter", "Verdict"]


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: float = 0.0
    """Seconds until the oldest counted hit leaves the window (0 when allowed)."""


class SlidingWindowLimiter:
    """`limiter.hit(key)`: count one request for `key` and say whether it may go ahead."""

    def __init__(self, limit: int, window: float, *, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be at least 1 and window more than 0 seconds")
        self.limit, self.window, self.max_keys, self.clock = limit, window, max_keys, clock
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, key: str) -> Verdict:
        """Refused hits are not counted, so a client that waits is let through again."""
        now = self.clock()
        with self._lock:
            hits = self._hits.pop(key, None) or deque()
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            allowed = len(hits) < self.limit
            if allowed:
                hits.append(now)
            self._hits[key] = hits
            while len(self._hits) > self.max_keys:
                self._hits.popitem(last=False)
            return Verdict(True) if allowed else Verdict(False, hits[0] + self.window - now)

    def reset(self) -> None:
        with self._lock:
            self._hits.clear()
