"""Counting one click: an upsert on the count, behind a de-duplication key per client and link.

Both statements are upserts (`INSERT … ON CONFLICT`), so parallel requests on SQLite or
PostgreSQL neither lose a click nor count a repeat twice.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ..context import Newsletter
from ..errors import StoreError
from ..mail.clicks import ClickTarget
from .models import ClickCount, ClickSeen

DEDUPE_SECONDS = 60


def client_key(secret: str, client_address: str, user_agent: str, target: ClickTarget) -> str:
    """A keyed hash of (client, link): it matches a repeat, and cannot be turned back into an
    address (a plain hash of an IPv4 address falls to trying all four billion)."""
    message = "\0".join((client_address, user_agent[:500], target.payload())).encode("utf-8",
                                                                                     "replace")
    return hmac.new(secret.encode("utf-8"), b"newsletter.click." + message,
                    hashlib.sha256).hexdigest()


def _insert(session: Session) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def record_click(session: Session, target: ClickTarget, key: str, now: datetime) -> bool:
    """Count one click unless the same client counted this link less than a minute ago."""
    insert = _insert(session)
    cutoff = now - timedelta(seconds=DEDUPE_SECONDS)
    fresh = session.execute(
        insert(ClickSeen).values(key=key, seen_at=now).on_conflict_do_update(
            index_elements=["key"], set_={"seen_at": now}, where=ClickSeen.seen_at <= cutoff)
        .returning(ClickSeen.key)).scalar()
    if fresh is None:
        return False
    url_hash = hashlib.sha256(target.url.encode("utf-8")).hexdigest()
    session.execute(
        insert(ClickCount).values(edition_month=target.month, summary_uid=target.summary_uid,
                                  url_hash=url_hash, url=target.url, clicks=1, first_at=now,
                                  last_at=now)
        .on_conflict_do_update(index_elements=["edition_month", "summary_uid", "url_hash"],
                               set_={"clicks": ClickCount.clicks + 1, "last_at": now}))
    return True


def prune_seen(session: Session, now: datetime) -> int:
    """Drop de-duplication keys older than the window; they are needed for no longer."""
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        delete(ClickSeen).where(ClickSeen.seen_at <= now - timedelta(seconds=DEDUPE_SECONDS)))
    return result.rowcount


def count_click(nl: Newsletter, target: ClickTarget, key: str, now: datetime) -> bool:
    """`record_click` in its own transaction; StoreError if the store fails."""
    try:
        with nl.session() as session:
            return record_click(session, target, key, now)
    except SQLAlchemyError as err:
        raise StoreError(f"the click could not be counted: {type(err).__name__}") from err


def prune_expired(nl: Newsletter, now: datetime) -> int:
    """`prune_seen` in a transaction of its own: pruners lock rows in index order, so they cannot
    deadlock with each other or with a count; StoreError if the store fails."""
    try:
        with nl.session() as session:
            return prune_seen(session, now)
    except SQLAlchemyError as err:
        raise StoreError(f"old click keys could not be pruned: {type(err).__name__}") from err
