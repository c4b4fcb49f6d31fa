"""A token bucket: at most `rate` messages per second on average, bursts up to `burst`.

Pure: the caller passes the time (seconds, any monotonic origin) and sleeps for the answer.
A request larger than the bucket is allowed and leaves it in debt, so a batch of 200 at 50/s
waits 4 s once instead of never going out.
"""

from __future__ import annotations

import math


class TokenBucket:
    def __init__(self, rate: float, burst: float | None = None) -> None:
        if not rate > 0 or math.isinf(rate):
            raise ValueError(f"rate must be a positive number of messages per second, not {rate!r}")
        self.rate = self.whole = float(rate)
        self.burst = float(burst if burst is not None else max(1.0, rate))
        self._tokens = self.burst
        self._at: float | None = None

    def rate_share(self, processes: int) -> None:
        """Take one of `processes` equal shares of the whole rate: the limit holds for a send,
        however many workers share it."""
        self.rate = self.whole / max(1, processes)

    def reserve(self, count: int, now: float) -> float:
        """Take `count` tokens; return the seconds to wait before using them."""
        if self._at is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        self._tokens -= count
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def chunk(self, batch_size: int) -> int:
        """A batch size that keeps each hand-over about one second's worth of messages."""
        return max(1, min(batch_size, int(self.whole)))
