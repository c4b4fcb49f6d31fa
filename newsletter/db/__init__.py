"""Engine, session and declarative base: the one place that knows how to reach the store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, MetaData, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import DeclarativeBase, sessionmaker
from sqlalchemy.types import TypeDecorator

from ..errors import ConfigError

EXAMPLE_URLS = "sqlite:///newsletter.db or postgresql://user@host/dbname"

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str, *, label: str = "database_url", **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout on every connection.

    A URL SQLAlchemy cannot use is a ConfigError saying what is wrong (`label` first), not a traceback.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"{label}: not a database URL; expected e.g. {EXAMPLE_URLS}") from None
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": 10})
    elif url.startswith("postgresql"):
        kwargs.setdefault("connect_args", {"connect_timeout": 10})
    try:
        engine = create_engine(url, **kwargs)
    except NoSuchModuleError:
        raise ConfigError(f"{label}: unknown database type or driver {parsed.drivername!r}; "
                          f"use e.g. {EXAMPLE_URLS}") from None
    except ImportError as err:
        raise ConfigError(f"{label}: the driver for {parsed.drivername} ({err.name or err}) is not "
                          f"installed; the newsletter runs on {EXAMPLE_URLS}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def check_connection(engine: Engine, *, label: str = "database_url") -> None:
    """Connect once, so a missing folder or a server that is not there is one line, not a traceback."""
    shown = engine.url.render_as_string(hide_password=True)
    path = engine.url.database
    if (engine.dialect.name == "sqlite" and path and path != ":memory:" and not path.startswith("file:")
            and not Path(path).parent.is_dir()):
        raise ConfigError(f"{label}: the folder {Path(path).parent} of {shown} does not exist; "
                          "create it or fix the URL")
    try:
        with engine.connect():
            pass
    except DBAPIError as err:
        reason = " ".join(str(err.orig).split()) or type(err.orig).__name__
        raise ConfigError(f"{label}: cannot open {shown}: {reason}") from err


def make_sessionmaker(engine: Engine) -> sessionmaker[Any]:
    return sessionmaker(engine, expire_on_commit=False)
