"""Pure: which of an edition's summaries a subscriber gets (their variant), and its key.

A variant is the set of matching summary ids in edition order, in the reader's language; its key
names it in the ledger and in every per-variant cache: `"1,3"` in the default language (English,
so keys written before languages existed keep their meaning), `"fr:1,3"` in another.
"""

from __future__ import annotations

from ..domain import EditionContent
from ..i18n import DEFAULT_LANGUAGE


def variant_for(edition: EditionContent, chosen: frozenset[str] | None) -> tuple[int, ...]:
    """The summaries this subscriber gets, in edition order; () means nothing this month.

    `None` means "all topics", which also covers topics added after they subscribed.
    """
    if chosen is None:
        return tuple(item.id for item in edition.items)
    return tuple(item.id for item in edition.items if item.topic_slugs & chosen)


def variant_key(summary_ids: tuple[int, ...], language: str = DEFAULT_LANGUAGE) -> str:
    """"" when nothing matches, whatever the language: no message, so no variant."""
    ids = ",".join(map(str, summary_ids))
    return ids if not ids or language == DEFAULT_LANGUAGE else f"{language}:{ids}"


def parse_variant_key(key: str) -> tuple[int, ...]:
    return tuple(int(part) for part in key.partition(":")[2 if ":" in key else 0].split(",") if part)


def variant_language(key: str) -> str:
    return key.partition(":")[0] if ":" in key else DEFAULT_LANGUAGE
