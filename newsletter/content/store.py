"""Summaries and editions in the store, and their conversion to the pure domain values."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from ..db.models import ResearchType, Topic
from ..domain import Citation, EditionContent, Named, SummaryItem
from ..errors import ContentError, StateError
from .assemble import Assembly, assemble, check_month
from .models import Edition, EditionItem, EditionStatus, Summary, SummaryStatus
from .revisions import record_revision
from .summary_file import SummaryDraft


def to_item(summary: Summary) -> SummaryItem:
    citation = dict(summary.citation)
    citation["authors"] = tuple(citation.get("authors", ()))
    return SummaryItem(
        id=summary.id, uid=summary.uid, month=summary.month, headline=summary.headline,
        citation=Citation(**citation), body_md=summary.body_md,
        implications_md=summary.implications_md, note_md=summary.note_md, byline=summary.byline,
        topics=tuple(Named(t.slug, t.name) for t in summary.topics),
        research_type=Named(summary.research_type.slug, summary.research_type.name))


def _find_existing(session: Session, draft: SummaryDraft) -> Summary | None:
    if draft.id:
        found = session.scalar(select(Summary).where(Summary.external_id == draft.id))
        if found is not None:
            return found
    return session.scalar(select(Summary).where(Summary.month == draft.month,
                                                Summary.headline == draft.headline))


@dataclass(frozen=True)
class Upsert:
    summary: Summary
    created: bool


def upsert_summary(session: Session, draft: SummaryDraft, *, into: Summary | None = None,
                   who: str | None = None) -> Upsert:
    """Add a summary, or update the one this file (same id, or same month + headline) made, or
    `into`; each save is kept as a revision by `who` (default: the file it came from)."""
    summary = into if into is not None else _find_existing(session, draft)
    created = summary is None
    research_type = session.scalar(select(ResearchType).where(
        ResearchType.slug == draft.research_type))
    if research_type is None:
        raise ContentError(f"unknown research type {draft.research_type!r}",
                           source=draft.source, field="research_type")
    topics = list(session.scalars(select(Topic).where(Topic.slug.in_(draft.topics))))
    if summary is None:
        summary = Summary()
        session.add(summary)
    citation = asdict(draft.citation)
    citation["authors"] = list(draft.citation.authors)
    summary.external_id = draft.id or summary.external_id
    summary.month, summary.headline, summary.citation = draft.month, draft.headline, citation
    summary.note_md, summary.body_md, summary.byline = draft.note_md, draft.body_md, draft.byline
    summary.implications_md, summary.research_type = draft.implications_md, research_type
    summary.topics, summary.status = topics, SummaryStatus(draft.status)
    summary.source_file = draft.source
    session.flush()
    record_revision(session, summary, draft, who or f"file {draft.source}")
    return Upsert(summary, created)


def list_summaries(session: Session, month: str | None = None) -> list[Summary]:
    query = select(Summary).order_by(Summary.month.desc(), Summary.id)
    if month:
        query = query.where(Summary.month == check_month(month))
    return list(session.scalars(query).unique())


def get_edition(session: Session, month: str) -> Edition:
    edition = session.scalar(select(Edition).where(Edition.month == check_month(month)))
    if edition is None:
        raise ContentError(f"no edition for {month}: run `newsletter edition assemble {month}`",
                           field="month")
    return edition


def edition_content(edition: Edition) -> EditionContent:
    return EditionContent(month=edition.month, subject=edition.subject,
                          preheader=edition.preheader, intro_md=edition.intro_md, id=edition.id,
                          items=tuple(to_item(item.summary) for item in edition.items))


def mark_sent(session: Session, edition_id: int, now: datetime) -> None:
    """A sending edition whose ledger is done becomes sent; a first `sent_at` is kept."""
    edition = session.get(Edition, edition_id)
    if edition is not None and edition.status is EditionStatus.SENDING:
        edition.status, edition.sent_at = EditionStatus.SENT, edition.sent_at or now


def assemble_edition(session: Session, month: str, *, order: list[int] | None = None,
                     subject: str | None = None, preheader: str | None = None) -> Assembly:
    """Store the month's edition from its ready summaries; refused once sending has started."""
    ready = [to_item(s) for s in list_summaries(session, month) if s.status is SummaryStatus.READY]
    edition = session.scalar(select(Edition).where(Edition.month == month))
    if edition is not None and edition.status not in (EditionStatus.DRAFT, EditionStatus.SCHEDULED,
                                                      EditionStatus.MISSED):
        raise StateError(f"the {month} edition is {edition.status.value}; it can no longer "
                         "be re-assembled")
    keep_subject = edition.subject if edition is not None else None
    keep_preheader = edition.preheader if edition is not None else None
    assembly = assemble(month, ready, order=order, subject=subject or keep_subject,
                        preheader=preheader or keep_preheader)
    if edition is None:
        edition = Edition(month=month)
        session.add(edition)
    edition.subject, edition.preheader = assembly.edition.subject, assembly.edition.preheader
    edition.items = [EditionItem(summary_id=item.id, position=position)
                     for position, item in enumerate(assembly.edition.items)]
    session.flush()
    return assembly


EDITABLE = (EditionStatus.DRAFT, EditionStatus.SCHEDULED, EditionStatus.MISSED)
"""Statuses whose content may still change (the same rule as re-assembling)."""


def edit_edition(session: Session, month: str, *, order: Sequence[int], subject: str,
                 preheader: str, intro_md: str | None) -> Edition:
    """The editor's edition: exactly the ready summaries `order` names, in that order, and its
    subject, preheader and intro ("" subject or preheader: the default, derived per variant)."""
    edition = get_edition(session, month)
    if edition.status not in EDITABLE:
        raise StateError(f"the {month} edition is {edition.status.value}; it can no longer "
                         "be changed")
    ready = {s.id for s in list_summaries(session, month) if s.status is SummaryStatus.READY}
    if not order:
        raise ContentError("an edition needs at least one summary", field="order")
    if len(set(order)) != len(order) or set(order) - ready:
        raise ContentError(f"not ready summaries of {month}: "
                           f"{sorted(set(order) - ready) or 'a summary twice'}", field="order")
    kept = {item.summary_id: item for item in edition.items}
    items = [kept.get(summary_id) or EditionItem(summary_id=summary_id) for summary_id in order]
    for position, item in enumerate(items):
        item.position = position
    edition.items = items
    edition.subject, edition.preheader, edition.intro_md = subject, preheader, intro_md or None
    session.flush()
    session.expire(edition, ["items"])
    return edition


@dataclass(frozen=True)
class MonthRow:
    """One month as the console lists it: its summaries and, once assembled, its edition."""

    month: str
    summaries: int
    ready: int
    status: EditionStatus | None
    items: int
    scheduled_at: datetime | None
    sent_at: datetime | None


def edition_months(session: Session) -> list[MonthRow]:
    """Every month with a summary or an edition, newest first: two GROUP BY queries."""
    counted = {month: (total, ready or 0) for month, total, ready in session.execute(
        select(Summary.month, func.count(),
               func.sum(case((Summary.status == SummaryStatus.READY, 1), else_=0)))
        .group_by(Summary.month))}
    editions = {row.month: row for row in session.execute(
        select(Edition.month, Edition.status, Edition.scheduled_at, Edition.sent_at,
               func.count(EditionItem.summary_id).label("items"))
        .outerjoin(EditionItem, EditionItem.edition_id == Edition.id)
        .group_by(Edition.id, Edition.month, Edition.status, Edition.scheduled_at,
                  Edition.sent_at))}
    rows = []
    for month in sorted(set(counted) | set(editions), reverse=True):
        total, ready = counted.get(month, (0, 0))
        e = editions.get(month)
        rows.append(MonthRow(month, total, int(ready), e.status if e else None,
                             e.items if e else 0, e.scheduled_at if e else None,
                             e.sent_at if e else None))
    return rows
