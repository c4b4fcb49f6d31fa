"""Previews: the edition exactly as one subscriber would receive it, written to files."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from .content.variants import variant_for, variant_key
from .context import Newsletter
from .db import utcnow
from .domain import EditionContent
from .i18n import DEFAULT_LANGUAGE
from .mail.compose import Composer

PREVIEW_ADDRESS = "preview@example.org"
PREVIEW_UID = "preview"


def preview_message(nl: Newsletter, edition: EditionContent, topics: frozenset[str] | None,
                    language: str = DEFAULT_LANGUAGE) -> EmailMessage | None:
    """The parsed message a subscriber of `topics` reading `language` gets, or None if nothing
    matches."""
    key = variant_key(variant_for(edition, topics), language)
    if not key:
        return None
    outgoing = Composer(nl, edition).compose(
        delivery_id=0, variant=key, uid=PREVIEW_UID, email=PREVIEW_ADDRESS, name="Preview Reader",
        topics=topics, date=utcnow())
    message = message_from_bytes(outgoing.data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


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
