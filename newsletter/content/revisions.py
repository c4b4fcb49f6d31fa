"""Every saved version of a summary, and the summary in its file form (export).

A revision holds the fields exactly as a summary file carries them, so restoring one goes through
the file loader's validation, and exporting then loading a summary gives back the same record.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..domain import Citation
from ..errors import ContentError
from .history_models import SummaryRevision
from .models import Summary
from .summary_file import SummaryDraft, format_summary

__all__ = ["RevisionRow", "draft_fields", "draft_from_fields", "export_summary", "get_summary",
           "list_revisions", "record_revision", "summary_draft"]

_DRAFT_KEYS = tuple(f.name for f in fields(SummaryDraft) if f.name != "source")


def draft_fields(draft: SummaryDraft) -> dict[str, Any]:
    """The draft as JSON-ready data, without where it came from."""
    values = {key: getattr(draft, key) for key in _DRAFT_KEYS}
    citation = asdict(draft.citation)
    citation.update(authors=list(draft.citation.authors), editors=list(draft.citation.editors))
    values.update(citation=citation, topics=list(draft.topics))
    return values


def draft_from_fields(values: dict[str, Any], source: str) -> SummaryDraft:
    known = {key: values[key] for key in _DRAFT_KEYS if key in values}
    known.update(citation=Citation(**values["citation"]), topics=tuple(values["topics"]))
    return SummaryDraft(source=source, **known)


def get_summary(session: Session, summary_id: int) -> Summary:
    summary = session.get(Summary, summary_id)
    if summary is None:
        raise ContentError(f"no summary #{summary_id}: `newsletter summary list` shows them",
                           field="id")
    return summary


def summary_draft(summary: Summary) -> SummaryDraft:
    """The stored record in file form (topics in the taxonomy's order)."""
    return SummaryDraft(
        source=f"summary #{summary.id}", id=summary.external_id, month=summary.month,
        headline=summary.headline, citation=Citation(**summary.citation),
        topics=tuple(t.slug for t in summary.topics), research_type=summary.research_type.slug,
        note_md=summary.note_md, body_md=summary.body_md, implications_md=summary.implications_md,
        status=summary.status.value, byline=summary.byline)


def export_summary(session: Session, summary_id: int) -> str:
    """The summary file that `newsletter summary add` reads back to this same record."""
    return format_summary(summary_draft(get_summary(session, summary_id)))


def record_revision(session: Session, summary: Summary, draft: SummaryDraft,
                    who: str) -> SummaryRevision | None:
    """Keep this save as the next revision; None when it changes nothing since the last one."""
    values = draft_fields(draft)
    last = session.scalar(select(SummaryRevision).where(SummaryRevision.summary_id == summary.id)
                          .order_by(SummaryRevision.number.desc()).limit(1))
    if last is not None and last.fields == values:
        return None
    number = (session.scalar(select(func.max(SummaryRevision.number))
                             .where(SummaryRevision.summary_id == summary.id)) or 0) + 1
    revision = SummaryRevision(summary_id=summary.id, number=number, fields=values,
                               saved_by=who[:1000])
    session.add(revision)
    session.flush()
    return revision


@dataclass(frozen=True)
class RevisionRow:
    number: int
    saved_by: str
    saved_at: datetime
    headline: str
    status: str

    def as_dict(self) -> dict[str, Any]:
        return {"number": self.number, "saved_by": self.saved_by, "headline": self.headline,
                "status": self.status, "saved_at": self.saved_at.isoformat()}


def list_revisions(session: Session, summary_id: int) -> list[RevisionRow]:
    """Oldest first, as they were saved."""
    get_summary(session, summary_id)
    revisions = session.scalars(select(SummaryRevision)
                                .where(SummaryRevision.summary_id == summary_id)
                                .order_by(SummaryRevision.number))
    return [RevisionRow(r.number, r.saved_by, r.saved_at, str(r.fields.get("headline", "")),
                        str(r.fields.get("status", ""))) for r in revisions]
