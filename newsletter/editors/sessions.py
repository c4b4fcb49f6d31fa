"""Server-side console sessions: the browser holds a random id, the store its hash. A session ends
when revoked, after `console_idle_minutes` without a request, or when the editor is disabled."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..db import utcnow
from .models import Editor, EditorSession

TOUCH_EVERY = timedelta(seconds=30)
"""A request within this of the last one does not write: most page loads stay reads."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create(session: Session, editor: Editor, *, client: str, user_agent: str,
           setup_only: bool = False) -> str:
    """A new session for `editor`; returns the token for the cookie (not kept anywhere)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(EditorSession(token_hash=token_hash(token), editor_id=editor.id, created_at=now,
                              last_seen_at=now, client=client[:64], user_agent=user_agent[:300],
                              setup_only=setup_only))
    session.flush()
    return token


def live(session: Session, token: str, *, idle: timedelta,
         now: datetime | None = None) -> tuple[EditorSession, Editor] | None:
    """The session and its editor if `token` names a live one; touches it (idle timeout)."""
    if not token or len(token) > 100:
        return None
    now = now or utcnow()
    row = session.execute(select(EditorSession, Editor).join(Editor)
                          .where(EditorSession.token_hash == token_hash(token))).first()
    if row is None:
        return None
    found, editor = row
    if found.revoked_at is not None or editor.disabled_at is not None:
        return None
    if now - found.last_seen_at > idle:
        found.revoked_at = now
        return None
    if now - found.last_seen_at > TOUCH_EVERY:
        found.last_seen_at = now
    return found, editor


def of_editor(session: Session, editor_id: int) -> list[EditorSession]:
    return list(session.scalars(select(EditorSession).where(
        EditorSession.editor_id == editor_id, EditorSession.revoked_at.is_(None))
        .order_by(EditorSession.last_seen_at.desc())))


def revoke(session: Session, editor_id: int, session_id: int) -> bool:
    """End one of `editor_id`'s sessions (never another editor's); whether one was ended."""
    result = session.execute(update(EditorSession).where(
        EditorSession.id == session_id, EditorSession.editor_id == editor_id,
        EditorSession.revoked_at.is_(None)).values(revoked_at=utcnow()))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def revoke_all(session: Session, editor_id: int, *, keep: int | None = None) -> int:
    """End every session of the editor but `keep`; how many were ended."""
    query = update(EditorSession).where(EditorSession.editor_id == editor_id,
                                        EditorSession.revoked_at.is_(None))
    if keep is not None:
        query = query.where(EditorSession.id != keep)
    return int(session.execute(query.values(revoked_at=utcnow())).rowcount)  # type: ignore[attr-defined]
