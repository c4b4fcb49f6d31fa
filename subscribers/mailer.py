"""Transactional emails (confirm, welcome, manage your preferences), outside the ledger.

They go through the same stack as an edition: `Renderer.render_message` (Jinja2 + premailer) with
`templates/email/<kind>.html/.txt`, then `compile_template` + `MessageTemplate.fill` for the MIME
bytes, then the configured transport. Each is rendered for its one recipient (a per-recipient link
such as the confirmation URL is plain context, not a marker); the recipient's name, address,
topics and standard links still go in through the markers, so escaping and encoding are exactly
those of a newsletter.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import format_datetime
from enum import StrEnum
from typing import Any

from newsletter.config import Config
from newsletter.db import utcnow
from newsletter.domain import Branding
from newsletter.errors import ComposeError, PermanentDeliveryError, RenderError
from newsletter.mail.compose import CANNOT_COMPOSE, fill_in, sender_address
from newsletter.mail.handover import hand_over, out_of_ledger_id
from newsletter.mail.links import LinkMaker, default_unsubscribe_mailto
from newsletter.mail.message import OutgoingMessage, Transport
from newsletter.mail.personalise import compile_template, envelope_address
from newsletter.mail.render import Renderer, check_rendered
from newsletter.tokens import TokenSigner
from newsletter.transports import make_transport

__all__ = ["Mail", "MailKind", "Mailer"]

log = logging.getLogger(__name__)


class MailKind(StrEnum):
    CONFIRM = "confirm"
    WELCOME = "welcome"
    MANAGE = "manage"


SUBJECTS = {
    MailKind.CONFIRM: "Please confirm your subscription to {name}",
    MailKind.WELCOME: "Welcome to {name}",
    MailKind.MANAGE: "Your subscription to {name}",
}
PREHEADERS = {
    MailKind.CONFIRM: "Open the link and press the button to subscribe. Did not ask? Ignore this email.",
    MailKind.WELCOME: "What you will receive, and how to change it.",
    MailKind.MANAGE: "You are already subscribed. Here is the link to change your topics.",
}


@dataclass(frozen=True)
class Mail:
    """One transactional email to one person, not yet rendered."""

    kind: MailKind
    uid: str
    email: str
    name: str
    topics: str
    """Their topics in words (`all topics`, `Empathy, Training`)."""
    context: dict[str, Any] = field(default_factory=dict)
    """Template values beyond the standard ones, e.g. `confirm_url`."""


class Mailer:
    """Renders and sends transactional emails through the configured transport, one at a time."""

    def __init__(self, config: Config, branding: Branding, *, renderer: Renderer | None = None,
                 transport_factory: Callable[[Config], Transport] = make_transport) -> None:
        self.config, self.branding = config, branding
        self.renderer = renderer or Renderer(branding, config.templates_dir or None)
        self.transport_factory = transport_factory
        self.links = LinkMaker(TokenSigner(config.secret_keys), config.base_url,
                               config.unsubscribe_mailto or default_unsubscribe_mailto(config.from_))
        self.envelope_from = envelope_address(sender_address(config.from_))[0]

    def build(self, mail: Mail) -> OutgoingMessage:
        """The finished message, exactly as the transport will get it; ComposeError if it cannot be
        written for this address or name."""
        context = {"subject": SUBJECTS[mail.kind].format(name=self.branding.newsletter_name),
                   "preheader": PREHEADERS[mail.kind], **mail.context}
        rendered = self.renderer.render_message(mail.kind.value, context)
        problems = check_rendered(rendered)
        if problems:
            raise RenderError(f"{mail.kind.value} email: " + "; ".join(problems))
        template = compile_template(rendered, variant=f"transactional-{mail.kind.value}",
                                    sender=self.config.from_, list_id=self.config.effective_list_id,
                                    reply_to=self.config.reply_to)
        unsubscribe = self.links.unsubscribe_url(mail.uid)
        values = {"name": mail.name, "email": mail.email, "topics": mail.topics,
                  "unsubscribe_url": unsubscribe,
                  "preferences_url": self.links.preferences_url(mail.uid)}
        message_id = f"<{mail.kind.value}.{secrets.token_hex(10)}@{template.message_id_domain}>"
        return fill_in(template, delivery_id=out_of_ledger_id(), envelope_from=self.envelope_from,
                       name=mail.name, email=mail.email, date=format_datetime(utcnow()),
                       message_id=message_id, list_unsubscribe=self.links.list_unsubscribe(unsubscribe),
                       values=values)

    def send(self, mail: Mail) -> None:
        """Hand one email over; DeliveryError (temporary or permanent) if it did not go, also when
        the message cannot be composed for this address."""
        try:
            message = self.build(mail)
        except ComposeError as err:
            raise PermanentDeliveryError(f"{mail.kind.value} email not sent: {CANNOT_COMPOSE}: {err}",
                                         recipient=mail.email, response=str(err)) from err
        result = hand_over(lambda: self.transport_factory(self.config), message,
                           f"{mail.kind.value} email")
        log.info("sent %s email (%s)", mail.kind.value, result.provider_id or "no id")
