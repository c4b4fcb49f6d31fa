"""APScheduler's job table, declared here so that our migrations create it.

`SQLAlchemyJobStore` creates its table on start when it is missing; two scheduler processes
starting together on an empty PostgreSQL database both try, and one dies on the duplicate. Owned by
the migrations, the table exists before any scheduler starts. The columns are APScheduler 3's own.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, LargeBinary, Table, Unicode

from . import Base

JOBS_TABLE = "apscheduler_jobs"

apscheduler_jobs = Table(
    JOBS_TABLE, Base.metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)
