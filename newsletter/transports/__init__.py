"""Ways of handing messages over; `make_transport` picks one from the settings."""

from __future__ import annotations

from ..config import Config
from ..mail.message import Outcome, OutgoingMessage, SendResult, Transport
from .http import HTTPSettings, HTTPTransport
from .mailgun import MailgunTransport
from .outbox import OutboxTransport
from .postmark import PostmarkTransport
from .sendgrid import SendGridTransport
from .smtp import SMTPSettings, SMTPTransport

__all__ = ["HTTPSettings", "HTTPTransport", "MailgunTransport", "OutboxTransport", "OutgoingMessage",
           "Outcome", "PostmarkTransport", "SMTPSettings", "SMTPTransport", "SendGridTransport",
           "SendResult", "Transport", "make_transport"]


def make_transport(config: Config) -> Transport:
    if config.transport == "outbox":
        return OutboxTransport(config.outbox_dir)
    if config.transport in ("postmark", "sendgrid", "mailgun"):
        return _http_transport(config)
    return SMTPTransport(
        SMTPSettings(host=config.smtp_host, port=config.smtp_port, security=config.smtp_security,
                     user=config.smtp_user, password=config.smtp_password,
                     timeout=config.smtp_timeout),
        batch_size=config.batch_size, connections=config.smtp_connections,
        dkim_selector=config.dkim_selector or None, dkim_domain=config.dkim_domain or None,
        dkim_private_key_path=config.dkim_private_key_path or None)


def _http_transport(config: Config) -> HTTPTransport:
    settings = HTTPSettings(api_key=config.api_key, base_url=config.api_base_url,
                            timeout=config.http_timeout)
    if config.transport == "postmark":
        return PostmarkTransport(settings, message_stream=config.postmark_message_stream)
    if config.transport == "mailgun":
        return MailgunTransport(settings, domain=config.mailgun_domain)
    return SendGridTransport(settings)
