"""Pure: turn a month's ready summaries into an edition, and derive what the editor did not set."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..domain import EditionContent, SummaryItem
from ..errors import ContentError
from ..i18n import DEFAULT_LANGUAGE, format_month, translations

MONTH_PATTERN = re.compile(r"^(19|20|21)\d\d-(0[1-9]|1[0-2])$")
SUBJECT_LIMIT = 120
PREHEADER_LIMIT = 140


def check_month(month: str) -> str:
    if not MONTH_PATTERN.match(month):
        raise ContentError(f"{month!r} is not a month; write it as YYYY-MM, e.g. 2015-01",
                           field="month")
    return month


@dataclass(frozen=True)
class Assembly:
    edition: EditionContent
    warnings: tuple[str, ...]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def default_subject(title: str, items: Sequence[SummaryItem], language: str = DEFAULT_LANGUAGE) -> str:
    """`3 research summaries · January 2015`: short enough for a phone's inbox line (about 35
    characters show), so the headlines go in the preheader. `title` is the month as a heading."""
    _ = translations(language, "email")
    return _clip(_.ngettext("%(num)d research summary · %(month)s",
                            "%(num)d research summaries · %(month)s", len(items))
                 % {"num": len(items), "month": title}, SUBJECT_LIMIT)


def default_preheader(items: Sequence[SummaryItem]) -> str:
    """Every headline the reader gets, in order: the inbox's second line tells what is inside.
    Headlines stay in the language they were written in, so the preheader has no chrome."""
    return _clip(" · ".join(item.headline for item in items), PREHEADER_LIMIT)


def month_title(month: str, language: str = DEFAULT_LANGUAGE) -> str:
    """`2015-01` as a heading in `language`: "January 2015", "janvier 2015"."""
    year, number = (int(part) for part in check_month(month).split("-"))
    return format_month(year, number, language)


def assemble(month: str, ready: Sequence[SummaryItem], *, order: Sequence[int] | None = None,
             subject: str | None = None, preheader: str | None = None,
             intro_md: str | None = None) -> Assembly:
    """Fix the edition's order (the editor's, else oldest first) and its subject and preheader."""
    check_month(month)
    if not ready:
        raise ContentError(f"no ready summaries for {month}: nothing to assemble", field="month")
    by_id = {item.id: item for item in ready}
    if order:
        unknown = [i for i in order if i not in by_id]
        if unknown:
            raise ContentError(f"not ready summaries of {month}: {unknown}", field="order")
        rest = sorted(set(by_id) - set(order))
        items = tuple(by_id[i] for i in [*order, *rest])
    else:
        items = tuple(sorted(ready, key=lambda item: item.id))
    warnings = () if 2 <= len(items) <= 3 else (
        f"{month} has {len(items)} ready summaries; editions usually have 2 or 3",)
    edition = EditionContent(month=month, subject=subject or "", preheader=preheader or "",
                             items=items, intro_md=intro_md)
    return Assembly(edition, warnings)


def for_variant(edition: EditionContent, summary_ids: tuple[int, ...],
                language: str = DEFAULT_LANGUAGE) -> EditionContent:
    """The edition as one variant sees it: subject and preheader speak of what they receive, in
    the reader's language unless the editor wrote them."""
    items = edition.subset(summary_ids)
    if not items:
        raise ContentError("a variant needs at least one summary", field="variant")
    return replace(edition,
                   subject=edition.subject or default_subject(month_title(edition.month, language),
                                                              items, language),
                   preheader=edition.preheader or default_preheader(items))
