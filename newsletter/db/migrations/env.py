"""Alembic environment: the engine comes from the caller (newsletter.db.migrate).

On SQLite, changing a table means copying it (batch mode) and dropping the original; with foreign
keys on, that drop would cascade into every row pointing at it (an edition's items and
deliveries). So foreign keys are off while migrating, checked before commit, and on again after.
"""

from alembic import context
from sqlalchemy.engine import Connection

from newsletter import schema  # noqa: F401  (registers every table)
from newsletter.archive.search import include_object
from newsletter.db import Base
from newsletter.errors import StoreError


def _run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=sqlite,
                      include_object=include_object)
    with connection.begin():
        context.run_migrations()
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
            if broken:
                raise StoreError(f"migration left {len(broken)} rows pointing at nothing, e.g. "
                                 f"{broken[0]}; nothing was changed")


engine = context.config.attributes["engine"]
with engine.connect() as connection:
    if connection.dialect.name != "sqlite":
        _run(connection)
    else:
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")  # a no-op inside a transaction
        connection.commit()
        try:
            _run(connection)
        finally:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()
