"""One message handed over outside the ledger: transactional mail, editor notes and test copies.

Editions go through the send loop, which records every result; these have no ledger row, so the
answer is an exception when the message did not go out.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..errors import PermanentDeliveryError, TemporaryDeliveryError
from .message import Outcome, OutgoingMessage, SendResult, Transport

__all__ = ["hand_over", "out_of_ledger_id"]


def out_of_ledger_id() -> int:
    """A delivery id far above any ledger row's, so that an outbox file name stays unique."""
    return time.time_ns() // 1000


def hand_over(open_transport: Callable[[], Transport], message: OutgoingMessage,
              what: str = "message") -> SendResult:
    """Send `message` on a transport opened for it and closed after; the SENT result, else
    PermanentDeliveryError or TemporaryDeliveryError naming `what` and the server's answer."""
    transport = open_transport()
    try:
        results = transport.send([message])
    finally:
        transport.close()
    result = results[0] if results else None
    if result is not None and result.outcome is Outcome.SENT:
        return result
    detail = result.detail if result else "no result"
    error = PermanentDeliveryError if result and result.outcome is Outcome.PERMANENT \
        else TemporaryDeliveryError
    raise error(f"{what} not sent: {detail}", transport=transport.name,
                recipient=message.recipient, response=detail)
