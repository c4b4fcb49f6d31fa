"""Transactional emails (confirm, welcome, manage your preferences), outside the ledger.

They go through the same stack as an edition: `Renderer.render_message` (Jinja2 + premailer) with
`templates/email/<kind>.html/.txt`, then the edition's own `compose_message` for the MIME bytes,
then the configured transport. Each is rendered for its one recipient (a per-recipient link
such as the confirmation URL is plain context, not a marker); the recipient's name, address,
topics and standard links still go in through the markers, so escaping and encoding are exactly
those of a newsletter.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from newsletter.config import Config
from newsletter.db import utcnow
from newsletter.domain import Branding
from newsletter.errors import ComposeError, PermanentDeliveryError, RenderError
from newsletter.i18n import DEFAULT_LANGUAGE, normalise_language, translations
from newsletter.mail.compose import CANNOT_COMPOSE, Recipient, compose_message, envelope_sender, template_for
from newsletter.mail.handover import hand_over, out_of_ledger_id
from newsletter.mail.links import LinkMaker
from newsletter.mail.message import OutgoingMessage, Transport
from newsletter.mail.render import Renderer, check_rendered
from newsletter.transports import make_transport

__all__ = ["Mail", "MailKind", "Mailer"]

log = logging.getLogger(__name__)


class MailKind(StrEnum):
    CONFIRM = "confirm"
    WELCOME = "welcome"
    MANAGE = "manage"


def _(message: str) -> str:
    """Marks a message for `pybabel extract`; it is translated where it is used."""
    return message


SUBJECTS = {
    MailKind.CONFIRM: _("Please confirm your subscription to %(name)s"),
    MailKind.WELCOME: _("Welcome to %(name)s"),
    MailKind.MANAGE: _("Your subscription to %(name)s"),
}
PREHEADERS = {
    MailKind.CONFIRM: _("Open the link and press the button to subscribe. Did not ask? Ignore this email."),
    MailKind.WELCOME: _("What you will receive, and how to change it."),
    MailKind.MANAGE: _("You are already subscribed. Here is the link to change your topics."),
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
    language: str = DEFAULT_LANGUAGE
    """The subscriber's language: the chrome, subject and preheader are written in it; a value
    that names no known language (an old row, a hand-edited one) falls back to the default."""


class Mailer:
    """Renders and sends transactional emails through the configured transport, one at a time."""

    def __init__(self, config: Config, branding: Branding, *, renderer: Renderer | None = None,
                 transport_factory: Callable[[Config], Transport] = make_transport) -> None:
        self.config, self.branding = config, branding
        self.renderer = renderer or Renderer(branding, config.templates_dir or None)
        self.transport_factory = transport_factory
        self.links = LinkMaker.for_config(config)
        self.envelope_from = envelope_sender(config.from_)

    def build(self, mail: Mail) -> OutgoingMessage:
        """The finished message, exactly as the transport will get it; ComposeError if it cannot be
        written for this address or name."""
        language = normalise_language(mail.language) or DEFAULT_LANGUAGE
        gettext = translations(language, "email").gettext
        context = {"subject": gettext(SUBJECTS[mail.kind]) % {"name": self.branding.newsletter_name},
                   "preheader": gettext(PREHEADERS[mail.kind]), **mail.context}
        rendered = self.renderer.render_message(mail.kind.value, context, language)
        problems = check_rendered(rendered)
        if problems:
            raise RenderError(f"{mail.kind.value} email: " + "; ".join(problems))
        template = template_for(self.config, rendered, f"transactional-{mail.kind.value}")
        return compose_message(template, Recipient(mail.uid, mail.email, mail.name, mail.topics),
                               self.links, date=utcnow(), message_id_prefix=mail.kind.value,
                               delivery_id=out_of_ledger_id(), envelope_from=self.envelope_from)

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
