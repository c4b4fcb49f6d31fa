"""Pure: what a plan found, counted per variant."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field


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
