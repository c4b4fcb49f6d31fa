"""SQL shapes that differ by database, for statements that run once a batch."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import ColumnElement, any_, bindparam
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import InstrumentedAttribute, Session

__all__ = ["one_of"]


def one_of(session: Session, column: ColumnElement[Any] | InstrumentedAttribute[Any],
           values: Collection[Any]) -> ColumnElement[bool]:
    """`column IN values` for a batch: on PostgreSQL `= ANY(array)`, one parameter, where an IN
    list renders, sends and parses one per value (and psycopg caches no statement of more than
    50, so it splits the query text again on every execution)."""
    if session.get_bind().dialect.name != "postgresql":
        return column.in_(values)
    return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))
