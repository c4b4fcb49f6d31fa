"""Restoring a summary's revision: it goes back through the file loader, as if typed again."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import ContentError
from .history_models import SummaryRevision
from .revisions import draft_from_fields, get_summary
from .store import Upsert, upsert_summary
from .summary_file import format_summary, parse_summary

__all__ = ["restore_revision"]


def restore_revision(session: Session, summary_id: int, number: int, *, who: str,
                     topics: Collection[str], research_types: Collection[str]) -> Upsert:
    """Save revision `number` as the summary's current version (itself a new revision); refused
    with the loader's messages when it no longer validates (a topic since removed…)."""
    summary = get_summary(session, summary_id)
    revision = session.scalar(select(SummaryRevision).where(
        SummaryRevision.summary_id == summary_id, SummaryRevision.number == number))
    if revision is None:
        raise ContentError(f"summary #{summary_id} has no revision {number}: `newsletter summary "
                           f"revisions {summary_id}` lists them", field="revision")
    source = f"revision {number} of summary #{summary_id}"
    try:
        text = format_summary(draft_from_fields(revision.fields, source))
    except (KeyError, TypeError, ValueError) as err:
        raise ContentError(f"the stored fields cannot be read back: {err}", source=source,
                           field="revision") from err
    draft = parse_summary(text, source, topics=topics, research_types=research_types)
    return upsert_summary(session, draft, into=summary, who=who)
