"""In-process sliding-window rate limits, keyed by client address or by target mailbox.

Each key keeps the times of its recent hits; a hit is allowed while fewer than `limit` fall inside
the last `window` seconds. `check` asks without counting and `record` counts, so a caller can
count only what it accepted (a signup form counts signups, not typos: ten people behind one
conference-room NAT who mistype their address are not locked out). Memory is bounded: at most
`max_keys` keys are tracked, and the ones idle longest are forgotten first.

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
        """Check and, if allowed, record. Refused hits are not counted, so a client that waits
        is let through again."""
        return self._visit(key, count=True)

    def check(self, key: str) -> Verdict:
        """Whether one more hit for `key` would be allowed, counting nothing."""
        return self._visit(key, count=False)

    def record(self, key: str) -> None:
        """Count one accepted hit for `key`, even past the limit (it was accepted elsewhere)."""
        now = self.clock()
        with self._lock:
            self._live_hits(key, now).append(now)
            self._forget_idle()

    def _visit(self, key: str, *, count: bool) -> Verdict:
        now = self.clock()
        with self._lock:
            hits = self._live_hits(key, now)
            allowed = len(hits) < self.limit
            if allowed and count:
                hits.append(now)
            self._forget_idle()
            return Verdict(True) if allowed else Verdict(False, hits[0] + self.window - now)

    def _live_hits(self, key: str, now: float) -> deque[float]:
        """The key's hits still inside the window, moved to the most recently used end."""
        hits = self._hits.pop(key, None) or deque()
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        self._hits[key] = hits
        return hits

    def _forget_idle(self) -> None:
        while len(self._hits) > self.max_keys:
            self._hits.popitem(last=False)

    def reset(self) -> None:
        with self._lock:
            self._hits.clear()
