"""Topic coverage: every topic of the taxonomy against the last editions, and who follows it.

Followers are counted as the planner chooses recipients (`sending.planner`): whoever receives mail
(`subscribers.store.receives_mail()`: active, not paused, not suppressed) and either chose the
topic or chose all topics (`all_topics`, which also covers topics added later; their stored topic
rows, if any, are ignored, as the planner ignores them). Coverage is the number of summaries with
the topic in each of the last editions (by month, whatever their status). Four small queries, two
of them a GROUP BY each: no subscriber row reaches Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from subscribers.models import Subscriber, subscriber_topics
from subscribers.store import receives_mail

from .content.models import Edition, EditionItem, EditionStatus, summary_topics
from .db.models import Topic

__all__ = ["RECENT_EDITIONS", "Coverage", "EditionColumn", "Followers", "TopicCoverage",
           "follower_counts", "topic_coverage"]

RECENT_EDITIONS = 12


@dataclass(frozen=True)
class EditionColumn:
    id: int
    month: str
    status: EditionStatus


@dataclass(frozen=True)
class TopicCoverage:
    slug: str
    name: str
    followers: int
    summaries: tuple[int, ...]
    """Summaries with this topic in each edition column, in the columns' order."""

    @property
    def covered(self) -> int:
        """How many of the editions had at least one summary with this topic."""
        return sum(1 for n in self.summaries if n)


@dataclass(frozen=True)
class Coverage:
    editions: list[EditionColumn]
    """The last editions, newest first."""
    topics: list[TopicCoverage]
    """Every topic, in taxonomy order."""
    everyone: int
    """Recipients who follow all topics (counted in every topic's followers)."""

    @property
    def many(self) -> int:
        """The follower count that makes a topic "followed by many": that of the topic at the
        top third's edge, followers sorted from most to fewest (ties all count)."""
        counts = sorted((t.followers for t in self.topics), reverse=True)
        return counts[ceil(len(counts) / 3) - 1] if counts else 0

    def not_covered(self) -> list[TopicCoverage]:
        """Topics followed by many (at least `many`, and someone) that no summary of the last
        editions covered, most followed first."""
        many = max(self.many, 1)
        found = [t for t in self.topics if t.followers >= many and not t.covered]
        return sorted(found, key=lambda t: -t.followers)  # stable: taxonomy order among ties


Followers = tuple[dict[int, int], int]
"""Followers by topic id among readers who chose topics, and the number who follow all topics."""


def follower_counts(session: Session) -> Followers:
    """(followers by topic id among those who chose topics, those who follow all topics): one
    pass over who receives mail, a GROUP BY. Each reader who chose topics joins their topic rows;
    an all-topics reader joins none (their stored rows are ignored) and lands in the NULL group,
    once; a reader with neither is left out."""
    st = subscriber_topics.c
    joined = (select(st.topic_id, func.count())
              .select_from(Subscriber)
              .outerjoin(subscriber_topics, and_(st.subscriber_id == Subscriber.id,
                                                 Subscriber.all_topics.is_(False)))
              .where(receives_mail(), or_(Subscriber.all_topics.is_(True), st.topic_id.is_not(None)))
              .group_by(st.topic_id))
    by_topic, all_topics = {}, 0
    for topic_id, n in session.execute(joined):
        if topic_id is None:
            all_topics = int(n)
        else:
            by_topic[int(topic_id)] = int(n)
    return by_topic, all_topics


def topic_coverage(session: Session, editions: int = RECENT_EDITIONS, *,
                   followers: Followers | None = None) -> Coverage:
    """The figures; `followers` is `follower_counts(session)` if the caller already has it (the
    console keeps it for a minute: the only query here that reads every subscriber)."""
    topics = session.execute(select(Topic.id, Topic.slug, Topic.name)
                             .order_by(Topic.position, Topic.slug)).all()
    columns = [EditionColumn(row.id, row.month, row.status) for row in session.execute(
        select(Edition.id, Edition.month, Edition.status)
        .order_by(Edition.month.desc()).limit(editions))]
    counts: dict[tuple[int, int], int] = {}
    if columns:
        sp = summary_topics.c
        counts = {(edition_id, topic_id): int(n) for edition_id, topic_id, n in session.execute(
            select(EditionItem.edition_id, sp.topic_id, func.count())
            .join(summary_topics, sp.summary_id == EditionItem.summary_id)
            .where(EditionItem.edition_id.in_([c.id for c in columns]))
            .group_by(EditionItem.edition_id, sp.topic_id))}
    by_topic, everyone = followers if followers is not None else follower_counts(session)
    rows = [TopicCoverage(t.slug, t.name, everyone + by_topic.get(t.id, 0),
                          tuple(counts.get((c.id, t.id), 0) for c in columns)) for t in topics]
    return Coverage(columns, rows, everyone)
