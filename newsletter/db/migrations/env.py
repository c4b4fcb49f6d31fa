"""Alembic environment: the engine comes from the caller (newsletter.db.migrate)."""

from alembic import context

from newsletter.db import (
    Base,
    all_models,  # noqa: F401  (registers every table)
)

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()
