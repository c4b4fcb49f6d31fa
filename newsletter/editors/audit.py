"""The audit log: who did what, when, from where. Written in the caller's transaction, so an
action and its entry are kept or lost together."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..db import utcnow
from ..db.paging import page_count
from .models import AuditEntry

CLI_CLIENT = "cli"
MAX_DETAIL_TEXT = 500


def record(session: Session, action: str, *, actor: str, client: str = CLI_CLIENT,
           detail: Mapping[str, Any] | None = None) -> AuditEntry:
    entry = AuditEntry(at=utcnow(), actor=actor[:254], action=action[:60], client=client[:64],
                       detail={k: _bounded(v) for k, v in (detail or {}).items()})
    session.add(entry)
    return entry


def _bounded(value: Any) -> Any:
    """Outside values (an address typed at the login form) are cut, never stored whole."""
    if isinstance(value, str):
        return value[:MAX_DETAIL_TEXT]
    return value


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return page_count(self.total, self.per_page)


ACTION_PREFIXES = ("login", "summary", "edition", "schedule", "send", "subscriber", "editor")
"""The areas the log can be filtered by: an action belongs to the first word it starts with."""


def entries(session: Session, *, page: int = 1, per_page: int = 50, action: str = "",
            actor: str = "") -> AuditPage:
    """Newest first; only actions starting with `action` (one of ACTION_PREFIXES) and only
    those of `actor` (an address, any case), when given."""
    page = max(1, page)
    where = []
    if action:
        if action not in ACTION_PREFIXES:
            raise ValueError(f"unknown action area {action!r}")
        where.append(AuditEntry.action.startswith(action, autoescape=True))
    if actor:
        where.append(func.lower(AuditEntry.actor) == actor.strip().lower()[:254])
    total = session.scalar(select(func.count()).select_from(AuditEntry).where(*where)) or 0
    rows = session.scalars(select(AuditEntry).where(*where)
                           .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
                           .offset((page - 1) * per_page).limit(per_page)).all()
    return AuditPage(list(rows), total, page, per_page)


def detail_lines(entry: AuditEntry) -> list[tuple[str, str]]:
    """The detail as (key, value) text, values that are not text as compact JSON."""
    return [(str(k), v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str))
            for k, v in (entry.detail or {}).items()]


def as_document(entry: AuditEntry) -> dict[str, Any]:
    return {"at": entry.at.isoformat(), "actor": entry.actor, "action": entry.action,
            "client": entry.client, "detail": entry.detail}
