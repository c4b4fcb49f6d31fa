"""What `/r/` keeps: a count per (edition, summary, link), and short-lived de-duplication keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, UTCDateTime


class ClickCount(Base):
    """Keyed by the month and the summary's public uid, as the token names them; the URL by its
    hash, so the unique index stays small however long the link."""

    __tablename__ = "click_counts"
    __table_args__ = (UniqueConstraint("edition_month", "summary_uid", "url_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    edition_month: Mapped[str] = mapped_column(String(7))
    summary_uid: Mapped[str] = mapped_column(String(32))
    url_hash: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(2000))
    clicks: Mapped[int]
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ClickSeen(Base):
    """One client's last counted click on one link: a keyed hash only, pruned after a minute."""

    __tablename__ = "click_seen"
    __table_args__ = (Index("ix_click_seen_seen_at", "seen_at"),)

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
