"""Create or upgrade the store with Alembic, driven from code (no alembic.ini to find)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from ..errors import StoreError
from ..paths import migrations_dir


def alembic_config(engine: Engine) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def require_current(engine: Engine) -> None:
    """Refuse to work on a store that `newsletter init` has not created or upgraded."""
    current, head = current_revision(engine), head_revision(engine)
    if current is None:
        raise StoreError(f"the store at {engine.url!r} is empty: run `newsletter init` first")
    if current != head:
        raise StoreError(f"the store is at revision {current}, the code needs {head}: "
                         "run `newsletter init` to upgrade it")
