"""Previews: the edition exactly as one subscriber would receive it, written to files."""

from __future__ import annotations

from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from subscribers.addresses import InvalidAddress
from subscribers.models import Subscriber
from subscribers.store import find, receives_mail

from .content.variants import variant_for, variant_key
from .context import Newsletter
from .db import utcnow
from .domain import EditionContent
from .errors import ContentError
from .i18n import DEFAULT_LANGUAGE
from .mail.compose import Composer

PREVIEW_ADDRESS = "preview@example.org"
PREVIEW_UID = "preview"


@dataclass(frozen=True)
class Reader:
    """Whom a preview is for: a sample reader, or a real subscriber (their links, their name)."""

    topics: frozenset[str] | None
    language: str = DEFAULT_LANGUAGE
    uid: str = PREVIEW_UID
    email: str = PREVIEW_ADDRESS
    name: str = "Preview Reader"


def preview_message(nl: Newsletter, edition: EditionContent, topics: frozenset[str] | None,
                    language: str = DEFAULT_LANGUAGE, *,
                    reader: Reader | None = None,
                    composer: Composer | None = None) -> EmailMessage | None:
    """The parsed message a subscriber of `topics` reading `language` gets (or exactly what
    `reader` gets), or None if nothing matches. Composed as the send loop composes it (by
    `composer`, which keeps each variant it rendered, when one for `edition` is given)."""
    reader = reader or Reader(topics, language)
    key = variant_key(variant_for(edition, reader.topics), reader.language)
    if not key:
        return None
    outgoing = (composer or Composer(nl, edition)).compose(
        delivery_id=0, variant=key, uid=reader.uid, email=reader.email, name=reader.name,
        topics=reader.topics, date=utcnow())
    message = message_from_bytes(outgoing.data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def subscriber_reader(session: Session, email: str) -> Reader:
    """The real subscriber with this address as a Reader; ContentError (field `email`) when
    there is none or they receive no mail at all (with why)."""
    try:
        found = find(session, email)
    except InvalidAddress as err:
        raise ContentError(f"that is not an email address: {err}", field="email") from err
    if found is None:
        raise ContentError("no subscriber has that address", field="email")
    if not session.scalar(select(Subscriber.id).where(Subscriber.id == found.id, receives_mail())):
        why = found.status.value if found.status.value != "active" \
            else "paused" if found.paused_at is not None else "suppressed"
        raise ContentError(f"this subscriber gets no mail at all ({why})", field="email")
    return Reader(found.topic_slugs, found.language, found.uid, found.email, found.name)


def write_preview(nl: Newsletter, edition: EditionContent, topics: frozenset[str] | None,
                  html_path: Path, language: str = DEFAULT_LANGUAGE) -> list[Path] | None:
    """Write `<name>.html`, `<name>.txt` and `<name>.eml`; decoded from the real message bytes."""
    message = preview_message(nl, edition, topics, language)
    if message is None:
        return None
    html_part = message.get_body(("html",))
    text_part = message.get_body(("plain",))
    assert html_part is not None and text_part is not None
    html_path.parent.mkdir(parents=True, exist_ok=True)
    text_path, eml_path = html_path.with_suffix(".txt"), html_path.with_suffix(".eml")
    html_path.write_text(_unix_newlines(html_part.get_content()), encoding="utf-8")
    text_path.write_text(_unix_newlines(text_part.get_content()), encoding="utf-8")
    eml_path.write_bytes(message.as_bytes(policy=policy.SMTP))
    return [html_path, text_path, eml_path]


def _unix_newlines(text: str) -> str:
    """The wire uses CRLF; files on disk read better with the platform's newlines."""
    return text.replace("\r\n", "\n")
