"""The retraction guard: Crossref's editorial notices about the DOIs an edition summarises.

Notices are stored per (summary, notice) with who acknowledged them. An unacknowledged
retraction (or withdrawal) blocks scheduling; corrections and expressions of concern are listed
for the editor but do not block. When Crossref cannot be asked, scheduling goes on with a
warning and the notices already stored still count.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..context import Newsletter
from ..crossref import CrossrefClient, LookupFailure, Notice, normalise_doi
from ..db import utcnow
from ..errors import ContentError
from .assemble import check_month
from .history_models import EditorialUpdate
from .models import Edition, Summary
from .revisions import get_summary

__all__ = ["UpdateCheck", "UpdateRow", "acknowledge", "check_updates",
           "client_of", "retraction_problems"]


LOG = logging.getLogger("newsletter.crossref")


def client_of(nl: Newsletter) -> CrossrefClient | None:
    """The configured client; None when `crossref_url` is empty (asking is switched off)."""
    config = nl.config
    if not config.crossref_url:
        return None
    return CrossrefClient(config.crossref_url, config.crossref_mailto, config.crossref_timeout)


@dataclass(frozen=True)
class UpdateRow:
    summary_id: int
    headline: str
    doi: str
    notice_doi: str
    kind: str
    label: str
    date: str | None
    acknowledged_by: str | None
    acknowledged_at: datetime | None

    @property
    def blocking(self) -> bool:
        return Notice(self.doi, self.notice_doi, self.kind, self.label, None, None).blocking \
            and self.acknowledged_at is None

    def as_dict(self) -> dict[str, Any]:
        return {"summary_id": self.summary_id, "headline": self.headline, "doi": self.doi,
                "notice_doi": self.notice_doi, "type": self.kind, "label": self.label,
                "date": self.date, "blocking": self.blocking,
                "acknowledged_by": self.acknowledged_by,
                "acknowledged_at": self.acknowledged_at.isoformat()
                if self.acknowledged_at else None}


@dataclass
class UpdateCheck:
    month: str
    rows: list[UpdateRow] = field(default_factory=list)
    failures: list[LookupFailure] = field(default_factory=list)
    asked: int = 0
    without_doi: list[int] = field(default_factory=list)

    @property
    def blocking(self) -> list[UpdateRow]:
        return [row for row in self.rows if row.blocking]

    def as_dict(self) -> dict[str, Any]:
        return {"month": self.month, "asked": self.asked, "without_doi": self.without_doi,
                "updates": [row.as_dict() for row in self.rows],
                "failures": [failure.as_dict() for failure in self.failures]}


def _summaries(session: Session, month: str) -> list[Summary]:
    """The edition's summaries once it is assembled, else every summary of the month."""
    edition = session.scalar(select(Edition).where(Edition.month == month))
    if edition is not None and edition.items:
        return [item.summary for item in edition.items]
    return list(session.scalars(select(Summary).where(Summary.month == month)
                                .order_by(Summary.id)))


def _doi_of(summary: Summary) -> str | None:
    try:
        return normalise_doi(summary.citation.get("doi") or "")
    except ContentError:
        return None


def _rows(session: Session, summaries: list[Summary]) -> list[UpdateRow]:
    headlines = {s.id: s.headline for s in summaries}
    stored = session.scalars(select(EditorialUpdate).where(
        EditorialUpdate.summary_id.in_(headlines)).order_by(EditorialUpdate.summary_id,
                                                            EditorialUpdate.id))
    return [UpdateRow(u.summary_id, headlines[u.summary_id], u.doi, u.notice_doi, u.kind, u.label,
                      u.notice_date, u.acknowledged_by, u.acknowledged_at) for u in stored]


def _ask(client: CrossrefClient, dois: list[str], check: UpdateCheck) -> dict[str, list[Notice]]:
    """Each DOI once; after Crossref proves unreachable the rest are not tried (no N timeouts)."""
    found: dict[str, list[Notice]] = {}
    for doi in dois:
        answer = client.notices(doi)
        check.asked += 1
        if isinstance(answer, LookupFailure):
            check.failures.append(answer)
            if answer.unreachable:
                break
        else:
            found[doi] = answer
    return found


def check_updates(nl: Newsletter, month: str, client: CrossrefClient | None = None,
                  *, ask: bool = True) -> UpdateCheck:
    """Ask Crossref about each summarised DOI, store new notices, and list every stored one."""
    check = UpdateCheck(check_month(month))
    with nl.session() as session:
        wanted = {s.id: _doi_of(s) for s in _summaries(session, check.month)}
    check.without_doi = [sid for sid, doi in wanted.items() if doi is None]
    client = client or (client_of(nl) if ask else None)
    found = _ask(client, sorted({d for d in wanted.values() if d}), check) if client else {}
    with nl.session() as session:
        for summary_id, doi in wanted.items():
            known = set(session.scalars(select(EditorialUpdate.notice_doi).where(
                EditorialUpdate.summary_id == summary_id)))
            for notice in found.get(doi or "", []):
                if notice.notice_doi not in known:
                    known.add(notice.notice_doi)
                    session.add(EditorialUpdate(
                        summary_id=summary_id, doi=notice.doi, notice_doi=notice.notice_doi,
                        kind=notice.kind, label=notice.label, notice_date=notice.date,
                        title=notice.title))
        session.flush()
        check.rows = _rows(session, _summaries(session, check.month))
    return check


def acknowledge(nl: Newsletter, summary_id: int, notice_doi: str, who: str,
                now: datetime | None = None) -> UpdateRow:
    """Record that `who` has read the notice (and dealt with the summary); it blocks no more."""
    notice_doi = normalise_doi(notice_doi)
    who = who.strip()[:200] or "unknown"
    with nl.session() as session:
        summary = get_summary(session, summary_id)
        stored = session.scalar(select(EditorialUpdate).where(
            EditorialUpdate.summary_id == summary_id, EditorialUpdate.notice_doi == notice_doi))
        if stored is None:
            raise ContentError(f"summary #{summary_id} has no notice {notice_doi}: `newsletter "
                               f"summary updates {summary.month}` lists them", field="notice")
        if stored.acknowledged_at is None:
            stored.acknowledged_by, stored.acknowledged_at = who, now or utcnow()
        session.flush()
        return next(row for row in _rows(session, [summary]) if row.notice_doi == notice_doi)


def retraction_problems(nl: Newsletter, month: str, *, ask: bool = True) -> list[str]:
    """Why the month may not be scheduled for its notices: each unacknowledged retraction. When
    Crossref cannot be asked (or `ask` is false: the console's page) this judges the notices
    stored so far, with a warning logged when asking failed."""
    check = check_updates(nl, month, ask=ask)
    for failure in check.failures:
        LOG.warning("the retraction check could not ask Crossref about %s: %s; scheduling goes "
                    "on with the notices stored so far (re-check with `newsletter summary "
                    "updates %s`)", failure.doi, failure.message, check.month)
    return [f"summary #{row.summary_id} ({row.headline}): {row.label.lower()} notice "
            f"{row.notice_doi} ({row.kind}) for {row.doi} is not acknowledged; read it, then "
            f"`newsletter summary acknowledge {row.summary_id} {row.notice_doi}`"
            for row in check.blocking]
