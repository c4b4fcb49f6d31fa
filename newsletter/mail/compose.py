"""Turn (template, recipient) into finished message bytes, using templates rendered once per variant.

`compose_message` is the one way an edition, a test copy, a preview or a transactional mail is
personalised; `compose_plain` writes an editor's note through the same header path.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime
from email.utils import format_datetime
from functools import lru_cache
from typing import NamedTuple

from sqlalchemy import select

from ..config import Config
from ..content.assemble import for_variant
from ..content.variants import parse_variant_key, variant_language
from ..context import Newsletter
from ..db.models import Topic
from ..domain import Branding, EditionContent
from ..errors import ComposeError, RenderError
from ..i18n import DEFAULT_LANGUAGE, normalise_language
from .clicks import ClickLinks
from .links import LinkMaker, TopicNames
from .message import OutgoingMessage
from .personalise import (
    MessageTemplate,
    compile_template,
    envelope_address,
    format_recipient,
    parse_sender,
    plain_message,
)
from .render import RenderedVariant, Renderer, check_rendered

CANNOT_COMPOSE = "cannot compose the message"


def branding_for(nl: Newsletter) -> Branding:
    c = nl.config
    logo = {"logo_url": c.logo_url, "logo_alt": c.logo_alt} if c.logo_url else {}
    return Branding(organisation=c.organisation, postal_address=c.postal_address,
                    base_url=c.base_url, extra=logo)


def make_renderer(nl: Newsletter) -> Renderer:
    clicks = ClickLinks.for_config(nl.config)
    return Renderer(branding_for(nl), nl.config.templates_dir or None,
                    rewrite_links=clicks.rewrite if clicks else None)


def envelope_sender(sender: str) -> str:
    """MAIL FROM for a From value like `Name <addr>`; ComposeError if it cannot be written."""
    return envelope_address(parse_sender(sender).address)[0]


def template_for(config: Config, rendered: RenderedVariant, variant: str) -> MessageTemplate:
    """`rendered` with the configured sender, list and reply address, and its language (RFC 3282)."""
    return compile_template(rendered, variant=variant, sender=config.from_,
                            list_id=config.effective_list_id, reply_to=config.reply_to,
                            extra_headers={"Content-Language": rendered.language})


class Recipient(NamedTuple):
    """Whom one message is for: `uid` signs their links, `topics` is their choice in words."""

    uid: str
    email: str
    name: str
    topics: str


def _date_header(date: datetime) -> str:
    """A batch shares one date: it is formatted once, not per recipient."""
    return _formatted_date(date, date.tzinfo)


@lru_cache(maxsize=8)
def _formatted_date(date: datetime, tzinfo: object) -> str:
    """`tzinfo` is in the key because equal instants in two zones are equal datetimes."""
    return format_datetime(date)


def _message_id(prefix: str, domain: str) -> str:
    return f"<{prefix}.{secrets.token_hex(10)}@{domain}>"


def compose_message(template: MessageTemplate, recipient: Recipient, links: LinkMaker, *,
                    date: datetime, message_id_prefix: str, delivery_id: int,
                    envelope_from: str) -> OutgoingMessage:
    """One recipient's message, for editions and transactional mail alike; ComposeError if their
    address or name cannot be written."""
    uid, email, name, topics = recipient
    unsubscribe = links.unsubscribe_url(uid)
    values = {"name": name, "email": email, "unsubscribe_url": unsubscribe,
              "preferences_url": links.preferences_url(uid), "topics": topics}
    message_id = _message_id(message_id_prefix, template.message_id_domain)
    list_unsubscribe = links.list_unsubscribe(unsubscribe)
    try:
        to = format_recipient(name, email)
        address, smtputf8 = envelope_address(email)
        data = template.fill(to=to, date=_date_header(date), message_id=message_id,
                             unsubscribe=list_unsubscribe, values=values)
    except UnicodeError as err:  # a lone surrogate in a name, say
        raise ComposeError(f"the name or address cannot be encoded: {err}") from err
    headers = {"To": to, "Message-ID": message_id,
               "List-Unsubscribe": ", ".join(f"<{u}>" for u in list_unsubscribe),
               "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    return OutgoingMessage(delivery_id, envelope_from, address, data, smtputf8,
                           template=template, values=values, headers=headers, dot_safe=True)


def compose_plain(*, sender: str, email: str, subject: str, body: str, date: datetime,
                  message_id_prefix: str, delivery_id: int,
                  extra_headers: Sequence[tuple[str, str]] = ()) -> OutgoingMessage:
    """A plain-text message to one address (an editor's note), with the headers, encodings and
    envelope rules of every other mail; ComposeError if the address cannot be written."""
    message_id = _message_id(message_id_prefix, parse_sender(sender).message_id_domain)
    try:
        to = format_recipient("", email)
        address, smtputf8 = envelope_address(email)
        data = plain_message(sender=sender, subject=subject, to=to, date=_date_header(date),
                             message_id=message_id, body=body, extra_headers=extra_headers)
    except UnicodeError as err:
        raise ComposeError(f"the message cannot be encoded: {err}") from err
    return OutgoingMessage(delivery_id, envelope_sender(sender), address, data, smtputf8,
                           dot_safe=True)


class Composer:
    """Everything per variant is cached here; `compose` is the per-recipient work."""

    def __init__(self, nl: Newsletter, edition: EditionContent,
                 renderer: Renderer | None = None) -> None:
        c = nl.config
        self.config, self.edition = c, edition
        self.renderer = renderer or make_renderer(nl)
        self.links = LinkMaker.for_config(c)
        self.envelope_from = envelope_sender(c.from_)
        with nl.session() as session:
            self.topic_names = TopicNames(dict(session.execute(
                select(Topic.slug, Topic.name).order_by(Topic.position)).all()))
        self._templates: dict[str, MessageTemplate] = {}

    @property
    def variants_rendered(self) -> int:
        return len(self._templates)

    def template(self, variant: str) -> MessageTemplate:
        """Rendered once per variant key, which names the language too (`"fr:1,3"`); a language
        the chrome does not speak (a stray stored value) gets the default's chrome."""
        if variant not in self._templates:
            ids = parse_variant_key(variant)
            language = normalise_language(variant_language(variant)) or DEFAULT_LANGUAGE
            rendered = self.renderer.render_variant(for_variant(self.edition, ids, language), ids,
                                                    language)
            problems = check_rendered(rendered)
            if problems:
                raise RenderError(f"variant {variant} of {self.edition.month}: "
                                  + "; ".join(problems))
            self._templates[variant] = template_for(self.config, rendered, variant)
        return self._templates[variant]

    def compose(self, *, delivery_id: int, variant: str, uid: str, email: str, name: str,
                topics: frozenset[str] | None, date: datetime) -> OutgoingMessage:
        """ComposeError when this recipient's message cannot be written (RenderError, for the
        whole variant, still stops the send)."""
        template = self.template(variant)
        return compose_message(
            template, Recipient(uid, email, name,
                                self.topic_names.describe(topics, template.rendered.language)),
            self.links, date=date, message_id_prefix=f"{self.edition.month}.{delivery_id}",
            delivery_id=delivery_id,
            envelope_from=verp.return_path(delivery_id) if (verp := self.config.verp)
            else self.envelope_from)
