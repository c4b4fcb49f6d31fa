"""Every error the library raises on purpose.

    ConfigError                      settings or credentials are wrong: fix the setup, do not retry
    NewsletterError
    ├── ContentError                 a summary file, CSV row or edition is invalid
    │   └── ContentErrors            several of them at once, each located
    ├── RenderError                  a template failed or produced an unusable message
    ├── ComposeError                 one recipient's message cannot be written: that row fails
    ├── StoreError                   the database is missing or unmigrated
    ├── SendInProgress               another process is sending this edition now: not a failure
    ├── StateError                   the operation does not fit the record's state (paused, sent)
    └── DeliveryError                one message (or batch) could not be handed over
        ├── TemporaryDeliveryError   try again later (SMTP 4xx, dropped connection, HTTP 429/5xx)
        └── PermanentDeliveryError   never try again (SMTP 5xx, provider says the address is dead)

`ConfigError` stands outside `NewsletterError` on purpose, as anymail keeps its configuration
error outside its base class: code that catches `NewsletterError` to log a failed mail and carry
on must not swallow a wrong password or a missing key, which fails every mail until someone
fixes the setup. Whoever reports errors to a person (the CLI, the scheduler's notes) catches it
by name.

Third-party exceptions are translated into these at the edge that called the library.
"""

from __future__ import annotations


class NewsletterError(Exception):
    """Base class of what the library raises on purpose, ConfigError apart (see above)."""


class ConfigError(Exception):
    """A setting is missing or invalid. Not a NewsletterError, so no `except NewsletterError`
    that carries on after one failed mail swallows it."""


class ContentError(NewsletterError):
    """Invalid content, located as precisely as possible: file, line, field."""

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        self.source, self.line, self.field, self.reason = source, line, field, message
        where = ":".join(str(p) for p in (source, line) if p is not None)
        prefix = f"{where}: " if where else ""
        prefix += f"{field}: " if field else ""
        super().__init__(prefix + message)


class ContentErrors(ContentError):
    """Several content problems found in one pass, so the author can fix them all at once."""

    def __init__(self, errors: list[ContentError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors) or "invalid content")


class RenderError(NewsletterError):
    """A template could not be rendered into a valid message."""


class ComposeError(NewsletterError):
    """One recipient's message cannot be composed (an address or name no header can carry).

    Only that recipient's row fails, with this as the reason; the rest of the batch goes out."""


class StoreError(NewsletterError):
    """The store is unusable: missing, unmigrated, or left inconsistent by a migration."""


class SendInProgress(NewsletterError):
    """Another process is sending this edition now; this one must not start."""


class StateError(NewsletterError):
    """The operation does not fit the record's state (a sent edition cannot be rescheduled)."""


class DeliveryError(NewsletterError):
    """A message could not be handed to the transport."""

    def __init__(self, message: str, *, transport: str | None = None,
                 recipient: str | None = None, response: str | None = None) -> None:
        self.transport, self.recipient, self.response = transport, recipient, response
        super().__init__(message)


class TemporaryDeliveryError(DeliveryError):
    """Worth retrying later."""


class PermanentDeliveryError(DeliveryError):
    """Retrying will not help."""
