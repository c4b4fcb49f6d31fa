"""One opened newsletter: settings plus a connection to its store. The CLI and web app make one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from .config import Config, load_config
from .db import check_connection, make_engine, make_sessionmaker
from .db.migrate import require_current, upgrade
from .taxonomy import sync_taxonomy


@dataclass
class Newsletter:
    config: Config
    engine: Engine
    sessions: sessionmaker[Any]

    @classmethod
    def open(cls, config: Config | None = None) -> Newsletter:
        config = config or load_config()
        engine = make_engine(config.database_url, label=config.where("database_url"))
        return cls(config, engine, make_sessionmaker(engine))

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back on any error."""
        with self.sessions() as session, session.begin():
            yield session

    def init(self) -> tuple[int, int]:
        """Create or upgrade the schema and load the taxonomy; safe to run any number of times."""
        self.check_connection()
        upgrade(self.engine)
        with self.session() as session:
            return sync_taxonomy(session)

    def require_ready(self) -> None:
        self.check_connection()
        require_current(self.engine)

    def check_connection(self) -> None:
        """A wrong database URL or a store that cannot be reached, said in one line (ConfigError)."""
        check_connection(self.engine, label=self.config.where("database_url"))

    def close(self) -> None:
        self.engine.dispose()
