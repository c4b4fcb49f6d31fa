"""Bring the legacy blog into the store: each post a ready summary, each month a sent edition.

Idempotent: each post is keyed by `legacy:<month>:<slug of its headline>`, so importing the same
file again changes nothing, and importing a corrected file updates only the posts that changed.
The file owns a post's text; the archive editor owns what the blog never recorded, so topics
added with `newsletter summary tag` and a corrected research type or status survive a re-import.
Imported summaries start without topics (the only way a summary can have none) and are listed by
`newsletter summary untagged` until someone tags them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..content.assemble import default_preheader, default_subject
from ..content.models import Edition, EditionItem, EditionStatus, Summary
from ..content.store import to_item, upsert_summary
from ..content.summary_file import SummaryDraft, decode_utf8
from ..context import Newsletter
from ..domain import EditionContent
from ..errors import ContentError
from ..taxonomy import slugify
from .legacy import LegacyPost, Problem, parse_archive

__all__ = ["MAX_ARCHIVE_BYTES", "ImportReport", "Inferred", "external_id", "import_archive"]

MAX_ARCHIVE_BYTES = 50 * 1024 * 1024
_ID_LIMIT = 100


@dataclass(frozen=True)
class Inferred:
    """A research type the importer chose from the post's words, for the editor to confirm."""

    summary_id: int
    month: str
    headline: str
    research_type: str
    reason: str


@dataclass
class ImportReport:
    source: str
    posts: int = 0
    summaries_added: int = 0
    summaries_updated: int = 0
    summaries_unchanged: int = 0
    editions_added: int = 0
    editions_updated: int = 0
    editions_unchanged: int = 0
    months: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    inferred: list[Inferred] = field(default_factory=list)
    untagged: int = 0

    @property
    def skipped(self) -> list[Problem]:
        """Problems that kept a post out of the store (the others only warn)."""
        return [p for p in self.problems if not p.imported]

    @property
    def changed(self) -> bool:
        return bool(self.summaries_added or self.summaries_updated or self.editions_added
                    or self.editions_updated)


def external_id(post: LegacyPost) -> str:
    """`legacy:2015-01:methods-of-repairing-alliance-ruptures`, within the column's 100 chars."""
    prefix = f"legacy:{post.month}:"
    return prefix + slugify(post.headline)[: _ID_LIMIT - len(prefix)].rstrip("-")


def read_archive_text(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_ARCHIVE_BYTES + 1)
    except OSError as err:
        raise ContentError(f"cannot read the file: {err.strerror or err}", source=str(path)) from err
    if len(data) > MAX_ARCHIVE_BYTES:
        raise ContentError(f"larger than {MAX_ARCHIVE_BYTES // 1024 // 1024} MB", source=str(path))
    return decode_utf8(data, str(path))


def import_archive(nl: Newsletter, path: Path) -> ImportReport:
    """Store every readable post of the legacy archive at `path`, in one transaction."""
    parsed = parse_archive(read_archive_text(path))
    report = ImportReport(source=str(path), posts=len(parsed.posts),
                          problems=list(parsed.problems))
    with nl.session() as session:
        by_month: dict[str, list[Summary]] = {}
        first_line: dict[str, int] = {}
        for post in parsed.posts:
            summary = _store_post(session, post, str(path), report)
            if summary is not None:
                by_month.setdefault(post.month, []).append(summary)
                first_line.setdefault(post.month, post.line)
        for month, summaries in by_month.items():
            _store_edition(session, month, summaries, first_line[month], report)
        report.months = list(by_month)
        report.untagged = sum(not s.topics for summaries in by_month.values() for s in summaries)
    report.problems.sort(key=lambda problem: problem.line)
    return report


def _text_fields(citation: dict[str, Any], note: str | None, body: str,
                 implications: str) -> dict[str, Any]:
    return {"citation": json.loads(json.dumps(citation)), "note_md": note, "body_md": body,
            "implications_md": implications}


def _store_post(session: Session, post: LegacyPost, source: str,
                report: ImportReport) -> Summary | None:
    """Add the post, update its text if the file changed, or leave it be; None when refused."""
    key = external_id(post)
    existing = session.scalar(select(Summary).where(Summary.external_id == key))
    if existing is None:
        clash = session.scalar(select(Summary).where(Summary.month == post.month,
                                                     Summary.headline == post.headline))
        if clash is not None:
            report.problems.append(Problem(post.line, f"summary #{clash.id} of {post.month} "
                                           "already has this headline and was not imported from "
                                           "this archive; left as it is"))
            return None
    draft = SummaryDraft(
        source=source, id=key, month=post.month, headline=post.headline, citation=post.citation,
        topics=tuple(t.slug for t in existing.topics) if existing else (),
        research_type=existing.research_type.slug if existing else post.research_type,
        note_md=post.note_md, body_md=post.body_md, implications_md=post.implications_md,
        status=existing.status.value if existing else "ready")
    wanted = _text_fields(asdict(post.citation), draft.note_md, draft.body_md,
                          draft.implications_md)
    if existing is not None:
        stored = _text_fields(existing.citation, existing.note_md, existing.body_md,
                              existing.implications_md)
        if stored == wanted and existing.headline == post.headline:
            report.summaries_unchanged += 1
            return existing
    summary = upsert_summary(session, draft).summary
    if existing is None:
        report.summaries_added += 1
        report.inferred.append(Inferred(summary.id, post.month, post.headline,
                                        post.research_type, post.research_type_reason))
    else:
        report.summaries_updated += 1
    return summary


def _store_edition(session: Session, month: str, summaries: list[Summary], line: int,
                   report: ImportReport) -> None:
    """The month's sent edition, holding its posts in file order; a sent edition made by hand
    gains the missing posts at its end; a draft or scheduled one is left alone and reported."""
    edition = session.scalar(select(Edition).where(Edition.month == month))
    if edition is None:
        items = [to_item(s) for s in summaries]
        title = EditionContent(month=month, subject="", preheader="", items=()).title
        year, number = (int(part) for part in month.split("-"))
        edition = Edition(month=month, status=EditionStatus.SENT,
                          sent_at=datetime(year, number, 1, tzinfo=UTC),
                          subject=default_subject(title, items),
                          preheader=default_preheader(items))
        edition.items = [EditionItem(summary_id=s.id, position=i) for i, s in enumerate(summaries)]
        session.add(edition)
        session.flush()
        report.editions_added += 1
        return
    if edition.status is not EditionStatus.SENT:
        report.problems.append(Problem(line, f"the {month} edition already exists and is "
                                          f"{edition.status.value}; the imported posts were not "
                                          "added to it", imported=True))
        return
    present = {item.summary_id for item in edition.items}
    missing = [s for s in summaries if s.id not in present]
    if not missing:
        report.editions_unchanged += 1
        return
    start = max((item.position for item in edition.items), default=-1) + 1
    edition.items.extend(EditionItem(summary_id=s.id, position=start + i)
                         for i, s in enumerate(missing))
    session.flush()
    report.editions_updated += 1
