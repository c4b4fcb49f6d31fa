"""Pure: who gets which variant of an edition."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

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


@dataclass
class PlanCounts:
    """What a plan found: recipients per variant, and how many had nothing matching."""

    by_variant: Counter[str] = field(default_factory=Counter)
    no_match: int = 0

    @property
    def recipients(self) -> int:
        return sum(self.by_variant.values())

    def add(self, keys: Iterable[str]) -> None:
        for key in keys:
            if key:
                self.by_variant[key] += 1
            else:
                self.no_match += 1
