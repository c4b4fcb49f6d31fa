"""Ways of handing messages over; `make_transport` picks one from the settings."""

from __future__ import annotations

from ..config import Config
from .base import Outcome, OutgoingMessage, SendResult, Transport
from .outbox import OutboxTransport
from .smtp import SMTPSettings, SMTPTransport

__all__ = ["OutboxTransport", "OutgoingMessage", "Outcome", "SMTPSettings", "SMTPTransport",
           "SendResult", "Transport", "make_transport"]


def make_transport(config: Config) -> Transport:
    if config.transport == "outbox":
        return OutboxTransport(config.outbox_dir)
    return SMTPTransport(
        SMTPSettings(host=config.smtp_host, port=config.smtp_port, security=config.smtp_security,
                     user=config.smtp_user, password=config.smtp_password,
                     timeout=config.smtp_timeout),
        batch_size=config.batch_size)
