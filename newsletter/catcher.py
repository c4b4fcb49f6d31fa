"""A local SMTP catcher (aiosmtpd) for the demo, development and tests: it keeps what it receives."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass(frozen=True)
class Received:
    mail_from: str
    recipients: tuple[str, ...]
    data: bytes

    def parse(self) -> EmailMessage:
        message = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(message, EmailMessage)
        return message


@dataclass
class CatchingHandler:
    """Accepts everything; optionally also writes each message to a folder as .eml."""

    folder: Path | None = None
    messages: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        data = content if isinstance(content, bytes) else content.encode()
        received = Received(str(envelope.mail_from), tuple(envelope.rcpt_tos), data)
        with self.lock:
            self.messages.append(received)
            index = len(self.messages)
        if self.folder is not None:
            (self.folder / f"{index:06d}.eml").write_bytes(data)
        return "250 Message accepted for delivery"


class SMTPCatcher:
    """`with SMTPCatcher() as catcher:` a real SMTP server on 127.0.0.1 at `catcher.port`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, folder: Path | None = None,
                 handler: Any = None) -> None:
        self.handler = handler or CatchingHandler(folder)
        self.controller = Controller(self.handler, hostname=host, port=port or free_port(host),
                                     enable_SMTPUTF8=True, data_size_limit=0)

    @property
    def host(self) -> str:
        return str(self.controller.hostname)

    @property
    def port(self) -> int:
        return int(self.controller.port)

    @property
    def messages(self) -> list[Received]:
        return list(self.handler.messages)

    def __enter__(self) -> SMTPCatcher:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (for a server about to start, or a refused connection)."""
    import socket
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
