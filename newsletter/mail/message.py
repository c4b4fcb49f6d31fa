"""The one small interface every way of sending mail implements.

A transport takes a batch of finished messages and answers, for each one, with a result from a
closed vocabulary (`Outcome`):

    SENT       accepted by the server or provider
    TEMPORARY  not accepted, worth trying again (SMTP 4xx, HTTP 429/5xx, nothing handed over)
    PERMANENT  refused for good (SMTP 5xx, an inactive recipient); never tried again
    UNCERTAIN  the message may have been accepted (it went out whole, the answer was lost);
               never retried automatically, only by `newsletter send --resend-uncertain`

It raises only `ConfigError` (credentials, settings: nothing was sent), and only before it has
handed over any message of the batch.

`on_result`, when given, is called once per message as soon as that message's result is known
(SMTP: when its final reply is read; an HTTP provider: once per request, for each message of
it), before `send` returns, so the caller can record it before a crash can lose it. Calls are
never concurrent, even from a transport's own threads; they follow the order each message was
answered in (within one SMTP connection, batch order). The returned list is unchanged: every
result, in batch order. `on_result` must not raise: it runs on the transport's threads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .personalise import MessageTemplate


class Outcome(StrEnum):
    SENT = "sent"
    TEMPORARY = "temporary"
    PERMANENT = "permanent"
    UNCERTAIN = "uncertain"


@dataclass(frozen=True)
class OutgoingMessage:
    """One finished message, in two forms.

    `data` is the complete MIME message (what SMTP and the outbox hand over). HTTP providers that
    batch by variant use `template` (rendered once per variant, with its `markers`), the
    recipient's `values` for those markers, and the per-recipient `headers` instead.
    """

    delivery_id: int
    envelope_from: str
    recipient: str
    data: bytes
    smtputf8: bool = False
    template: MessageTemplate | None = None
    values: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    dot_safe: bool = False
    """No line of `data` starts with '.' (every message `personalise` writes): SMTP's DATA can
    send it as it is, without the dot-stuffing scan and copy."""


@dataclass(frozen=True)
class SendResult:
    delivery_id: int
    outcome: Outcome
    provider_id: str | None = None
    detail: str = ""
    mailbox_gone: bool = False
    retry_after: float | None = None
    """Seconds the provider asked us to wait before trying again (HTTP Retry-After), if any."""
    unreachable: bool = False
    """The server never answered the connection (a connect or greeting timeout): nothing was
    handed over. The send loop stops after a few batches of only these."""

    def __post_init__(self) -> None:
        if not isinstance(self.outcome, Outcome):
            raise TypeError(f"outcome must be an Outcome, not {self.outcome!r}")


ResultCallback = Callable[[SendResult], None]
"""Told each result as soon as it is known (`Transport.send`'s `on_result`)."""


class Transport(Protocol):
    name: str
    batch_size: int

    def send(self, batch: Sequence[OutgoingMessage], *,
             on_result: ResultCallback | None = None) -> list[SendResult]: ...

    def close(self) -> None: ...
