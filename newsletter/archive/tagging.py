"""Topics for imported summaries: the legacy blog never stored them per post.

A summary without topics reaches no topic-filtered subscriber and no topic page, so the import
flags every such summary; an editor lists them and tags each one (and may correct the research
type the import inferred).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..content.models import Summary, summary_topics
from ..content.summary_file import unknown_message
from ..db.models import ResearchType, Topic
from ..errors import ContentError, ContentErrors
from ..taxonomy import research_type_slugs, topic_slugs

__all__ = ["list_untagged", "tag_summary"]


def list_untagged(session: Session) -> list[Summary]:
    """Summaries with no topic, newest month first (in practice: imported, not yet tagged)."""
    tagged = select(summary_topics.c.summary_id)
    query = (select(Summary).where(Summary.id.not_in(tagged))
             .order_by(Summary.month.desc(), Summary.id))
    return list(session.scalars(query).unique())


def _check(session: Session, slugs: Sequence[str], research_type: str | None) -> None:
    """Every unknown slug at once, each with the nearest valid ones."""
    topics, types = topic_slugs(session), research_type_slugs(session)
    errors = [ContentError(unknown_message("topic", slug, topics), field="topics")
              for slug in dict.fromkeys(slugs) if slug not in topics]
    if research_type is not None and research_type not in types:
        errors.append(ContentError(unknown_message("research type", research_type, types),
                                   field="research_type"))
    if errors:
        raise ContentErrors(errors)


def tag_summary(session: Session, summary_id: int, slugs: Sequence[str], *,
                research_type: str | None = None) -> Summary:
    """Add topics to a summary (those it has stay) and optionally set its research type; every
    slug is checked before anything changes."""
    summary = session.get(Summary, summary_id)
    if summary is None:
        raise ContentError(f"no summary #{summary_id}: see `newsletter summary list`", field="id")
    if not slugs and research_type is None:
        raise ContentError("name at least one topic", field="topics")
    _check(session, slugs, research_type)
    wanted = {t.slug for t in summary.topics} | set(slugs)
    summary.topics = list(session.scalars(
        select(Topic).where(Topic.slug.in_(wanted)).order_by(Topic.position)))
    if research_type is not None:
        summary.research_type = session.scalars(
            select(ResearchType).where(ResearchType.slug == research_type)).one()
    session.flush()
    return summary
