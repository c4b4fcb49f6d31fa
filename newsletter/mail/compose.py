"""Turn (edition, recipient) into finished message bytes, using templates rendered once per variant.

Used by the send loop, by previews and by test sends, so all three produce the same bytes.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime
from email.utils import format_datetime

from sqlalchemy import select

from newsletter.tokens import TokenSigner

from ..content.assemble import for_variant
from ..content.variants import parse_variant_key
from ..context import Newsletter
from ..db.models import Topic
from ..domain import Branding, EditionContent
from ..errors import ComposeError, RenderError
from .links import LinkMaker, TopicNames, default_unsubscribe_mailto
from .message import OutgoingMessage
from .personalise import MessageTemplate, compile_template, envelope_address, format_recipient
from .render import Renderer, check_rendered

CANNOT_COMPOSE = "cannot compose the message"


def branding_for(nl: Newsletter) -> Branding:
    c = nl.config
    return Branding(organisation=c.organisation, postal_address=c.postal_address,
                    base_url=c.base_url)


def make_renderer(nl: Newsletter) -> Renderer:
    return Renderer(branding_for(nl), nl.config.templates_dir or None)


def sender_address(sender: str) -> str:
    """The bare address inside a From value like `Name <addr>`."""
    return sender.rpartition("<")[2].rstrip(">").strip()


class Composer:
    """Everything per variant is cached here; `compose` is the per-recipient work."""

    def __init__(self, nl: Newsletter, edition: EditionContent,
                 renderer: Renderer | None = None) -> None:
        c = nl.config
        self.config, self.edition = c, edition
        self.renderer = renderer or make_renderer(nl)
        self.links = LinkMaker(TokenSigner(c.secret_keys), c.base_url,
                               c.unsubscribe_mailto or default_unsubscribe_mailto(c.from_))
        self.envelope_from = envelope_address(sender_address(c.from_))[0]
        with nl.session() as session:
            self.topic_names = TopicNames(dict(session.execute(
                select(Topic.slug, Topic.name).order_by(Topic.position)).all()))
        self._templates: dict[str, MessageTemplate] = {}
        self._last_date: tuple[datetime, str] | None = None

    @property
    def variants_rendered(self) -> int:
        return len(self._templates)

    def template(self, variant: str) -> MessageTemplate:
        if variant not in self._templates:
            ids = parse_variant_key(variant)
            rendered = self.renderer.render_variant(for_variant(self.edition, ids), ids)
            problems = check_rendered(rendered)
            if problems:
                raise RenderError(f"variant {variant} of {self.edition.month}: "
                                  + "; ".join(problems))
            self._templates[variant] = compile_template(
                rendered, variant=variant, sender=self.config.from_,
                list_id=self.config.effective_list_id, reply_to=self.config.reply_to)
        return self._templates[variant]

    def _date_header(self, date: datetime) -> str:
        """A batch shares one `date`: format it once, not per recipient."""
        if self._last_date is None or self._last_date[0] != date:
            self._last_date = (date, format_datetime(date))
        return self._last_date[1]

    def compose(self, *, delivery_id: int, variant: str, uid: str, email: str, name: str,
                topics: frozenset[str] | None, date: datetime) -> OutgoingMessage:
        """ComposeError when this recipient's message cannot be written (RenderError, for the
        whole variant, still stops the send)."""
        template = self.template(variant)
        unsubscribe = self.links.unsubscribe_url(uid)
        values = {"name": name, "email": email, "unsubscribe_url": unsubscribe,
                  "preferences_url": self.links.preferences_url(uid),
                  "topics": self.topic_names.describe(topics)}
        message_id = (f"<{self.edition.month}.{delivery_id}.{secrets.token_hex(6)}"
                      f"@{template.message_id_domain}>")
        return fill_in(template, delivery_id=delivery_id, envelope_from=self.envelope_from,
                       name=name, email=email, date=self._date_header(date), message_id=message_id,
                       list_unsubscribe=self.links.list_unsubscribe(unsubscribe), values=values)


def fill_in(template: MessageTemplate, *, delivery_id: int, envelope_from: str, name: str,
            email: str, date: str, message_id: str, list_unsubscribe: tuple[str, ...],
            values: Mapping[str, str]) -> OutgoingMessage:
    """One recipient's message, for editions and transactional mail alike; ComposeError if their
    address or name cannot be written."""
    try:
        to = format_recipient(name, email)
        recipient, smtputf8 = envelope_address(email)
        data = template.fill(to=to, date=date, message_id=message_id, unsubscribe=list_unsubscribe,
                             values=values)
    except UnicodeError as err:  # a lone surrogate in a name, say
        raise ComposeError(f"the name or address cannot be encoded: {err}") from err
    headers = {"To": to, "Message-ID": message_id,
               "List-Unsubscribe": ", ".join(f"<{u}>" for u in list_unsubscribe),
               "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    return OutgoingMessage(delivery_id, envelope_from, recipient, data, smtputf8,
                           template=template, values=values, headers=headers)
