"""Numbered pages of a query's rows: how many there are, for every paginated list."""

from __future__ import annotations

__all__ = ["page_count"]


def page_count(total: int, per_page: int) -> int:
    """Pages needed for `total` rows (at least one, so an empty list still has its page 1)."""
    return max(1, -(-total // per_page))
