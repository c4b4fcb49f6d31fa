"""A test copy of an edition: exactly what a subscriber of some topics gets, subject prefixed
`[TEST] `, sent to any address outside the ledger."""

from __future__ import annotations

from dataclasses import replace

from ..content.assemble import for_variant
from ..content.store import edition_content, get_edition
from ..content.variants import variant_for, variant_key
from ..context import Newsletter
from ..db import utcnow
from ..errors import ContentError
from ..i18n import DEFAULT_LANGUAGE
from ..mail.compose import Composer
from ..mail.handover import hand_over, out_of_ledger_id
from ..transports import make_transport

__all__ = ["TEST_PREFIX", "send_test_copy"]

TEST_PREFIX = "[TEST] "


def send_test_copy(nl: Newsletter, month: str, to: str, topics: frozenset[str] | None = None,
                   language: str = DEFAULT_LANGUAGE) -> str:
    """Send one copy of the edition, subject prefixed `[TEST] `, outside the ledger; returns the
    variant key. The copy is exactly what a subscriber of `topics` reading `language` gets
    (None: all topics)."""
    with nl.session() as session:
        content = edition_content(get_edition(session, month))
    ids = variant_for(content, topics)
    key = variant_key(ids, language)
    if not key:
        raise ContentError("a subscriber of these topics receives nothing this month",
                           field="topics")
    subject = for_variant(content, ids, language).subject
    content = replace(content, subject=TEST_PREFIX + subject)
    message = Composer(nl, content).compose(
        delivery_id=out_of_ledger_id(), variant=key, uid="test-send", email=to,
        name="", topics=topics, date=utcnow())
    hand_over(lambda: make_transport(nl.config), message, "test copy")
    return key
