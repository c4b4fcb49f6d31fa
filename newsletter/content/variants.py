"""Pure: which of an edition's summaries a subscriber gets (their variant), and its key.

A variant is the set of matching summary ids in edition order; its key (`"1,3"`) names it in the
ledger and in every per-variant cache.
"""

from __future__ import annotations

from ..domain import EditionContent


def variant_for(edition: EditionContent, chosen: frozenset[str] | None) -> tuple[int, ...]:
    """The summaries this subscriber gets, in edition order; () means nothing this month.

    `None` means "all topics", which also covers topics added after they subscribed.
    """
    if chosen is None:
        return tuple(item.id for item in edition.items)
    return tuple(item.id for item in edition.items if item.topic_slugs & chosen)


def variant_key(summary_ids: tuple[int, ...]) -> str:
    return ",".join(map(str, summary_ids))


def parse_variant_key(key: str) -> tuple[int, ...]:
    return tuple(int(part) for part in key.split(",") if part)
