"""`send_edition`: the one way to deliver an edition, for `newsletter send`, the scheduler and the
demo, in one process or with workers."""

from __future__ import annotations

from typing import Any

from ..context import Newsletter
from ..mail.message import Transport
from ..transports import transport_for
from .engine import Sender
from .outcomes import SendReport
from .worker import send_with_workers

__all__ = ["send_edition"]


def send_edition(nl: Newsletter, month: str, *, transport: Transport | None = None,
                 resend_uncertain: bool = False, workers: int = 1, **options: Any) -> SendReport:
    """Deliver the month's edition to every matching subscriber, exactly once; with `workers`
    above 1, planned here and delivered by this process and `workers - 1` more on this host.

    Opens the configured transport unless one is given, and closes only one it opened. `options`
    go to `Sender` (progress, stop, clock, retry, rate_limit).
    """
    if workers > 1:
        return send_with_workers(nl, month, workers, transport=transport,
                                 resend_uncertain=resend_uncertain, **options)
    with transport_for(nl.config, transport) as active:
        return Sender(nl, active, **options).send(month, resend_uncertain=resend_uncertain)
