"""Whether anyone will act on a schedule: a scheduler running in this process (`newsletter run`),
or one elsewhere that has already mirrored the edition's schedule into the shared job table
(process.py adds a `send:MONTH` job within one poll of the schedule being set).

There is no heartbeat table for schedulers, so a scheduler in another process is seen only by
its job: until its next poll, "not seen" does not mean "not running"."""

from __future__ import annotations

from sqlalchemy import func, select

from ..context import Newsletter
from ..db.jobs import apscheduler_jobs
from . import process

__all__ = ["job_stored", "scheduler_here"]


def scheduler_here(nl: Newsletter) -> bool:
    """A scheduler runs in this very process on this store (`newsletter run`)."""
    return process.store_key(nl) in process._LIVE


def job_stored(nl: Newsletter, month: str) -> bool:
    """Some scheduler has the month's send in the shared job table."""
    with nl.session() as session:
        return bool(session.scalar(select(func.count()).select_from(apscheduler_jobs).where(
            apscheduler_jobs.c.id == process.JOB_PREFIX + month)))
