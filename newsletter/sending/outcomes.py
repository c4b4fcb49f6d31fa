"""What a send run tells its caller, and how a batch's results become retry times and counts.

Pure: values in, values out. The engine writes what these compute through the ledger.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from ..mail.message import Outcome, SendResult
from .ledger import Claimed
from .plan import PlanCounts
from .retry import RetryPolicy


class StopReason(StrEnum):
    """Why a run ended before the ledger was done. The values are what reports and JSON show."""

    INTERRUPTED = "interrupted"
    """The stop event was set (SIGTERM, Ctrl-C, a scheduler shutting down)."""
    PAUSED = "paused"
    CANCELLED = "cancelled"
    UNREACHABLE = "unreachable"
    """Several batches in a row in which the server never answered a connection."""


@dataclass
class SendReport:
    month: str
    planned: PlanCounts = field(default_factory=PlanCounts)
    sent: int = 0
    rejected: int = 0
    retried: int = 0
    """Temporary failures that were retried (or left for a later run)."""
    uncertain: int = 0
    """Handed over in this run but the transport could not say what became of them: never
    retried automatically (`--resend-uncertain`)."""
    recovered_uncertain: int = 0
    left: int = 0
    """Planned, but the subscriber unsubscribed, paused or was suppressed before their turn."""
    variants_rendered: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0
    complete: bool = False
    stopped: StopReason | None = None
    ledger: dict[str, int] = field(default_factory=dict)
    workers: int = 1
    """Processes that delivered this send; with more than one, `sent` adds them all up."""
    failing: set[int] = field(default_factory=set, repr=False)

    @property
    def failed(self) -> int:
        """Rows whose last attempt in this run failed temporarily (due again later)."""
        return len(self.failing)

    @property
    def rate(self) -> float:
        handed = self.sent + self.failed + self.rejected + self.uncertain
        return handed / self.elapsed if self.elapsed else 0.0

    def add(self, results: Sequence[SendResult]) -> None:
        for result in results:
            if result.outcome is Outcome.SENT:
                self.sent += 1
                self.failing.discard(result.delivery_id)
                continue
            self.reasons[result.detail] += 1
            if result.outcome is Outcome.TEMPORARY:
                self.retried += 1
                self.failing.add(result.delivery_id)
                continue
            self.failing.discard(result.delivery_id)
            if result.outcome is Outcome.UNCERTAIN:
                self.uncertain += 1
            else:
                self.rejected += 1


def retry_times(claimed: Sequence[Claimed], results: Sequence[SendResult], now: datetime,
                policy: RetryPolicy) -> dict[int, datetime]:
    """When each temporarily failed row is due again: backoff within the run while it has tries
    left, else `policy.later` so that a later `newsletter send` picks it up."""
    attempts = {c.delivery_id: c.attempts for c in claimed}
    due: dict[int, datetime] = {}
    for result in results:
        if result.outcome is not Outcome.TEMPORARY:
            continue
        tried = attempts.get(result.delivery_id, 1)
        if policy.gives_up(tried):
            wait = max(policy.later, result.retry_after or 0.0)
        else:
            wait = policy.delay(tried, result.retry_after)
        due[result.delivery_id] = now + timedelta(seconds=wait)
    return due


def uncertain_by_reason(results: Sequence[SendResult]) -> dict[str, list[int]]:
    """The UNCERTAIN results' rows, grouped by reason: one ledger update per reason."""
    groups: dict[str, list[int]] = {}
    for result in results:
        if result.outcome is Outcome.UNCERTAIN:
            groups.setdefault(result.detail, []).append(result.delivery_id)
    return groups


def unanswered(claimed: Sequence[Claimed], results: Sequence[SendResult]) -> list[int]:
    """Claimed rows the transport returned no result for: their fate is unknown."""
    answered = {r.delivery_id for r in results}
    return [c.delivery_id for c in claimed if c.delivery_id not in answered]
