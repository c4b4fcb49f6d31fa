"""`schedule …`, `scheduler`, `run` and `edition test-send`: when an edition goes out, unattended."""

from __future__ import annotations

import logging
import re
from typing import Any

import click

from ..db import utcnow
from ..errors import ConfigError, ContentError
from ..schedule import editions
from ..schedule.recurring import MonthlyRule, describe
from ..sending.test_copy import send_test_copy
from ..taxonomy import topic_slugs
from . import cli, emit_json, library_errors, open_newsletter
from .content import edition

_MONTH = re.compile(r"^\d{4}-\d{2}$")
_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _ScheduleGroup(click.Group):
    """`schedule 2026-12 --at …` is short for `schedule set 2026-12 --at …`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and _MONTH.match(args[0]):
            args = ["set", *args]
        return super().parse_args(ctx, args)


@cli.group(cls=_ScheduleGroup)
def schedule() -> None:
    """Schedule, list and cancel edition sends (`schedule YYYY-MM --at …` schedules).

    Example:

        newsletter schedule 2026-12 --at "2026-12-01 09:00" --tz America/Toronto
    """


@schedule.command("set")
@click.argument("month")
@click.option("--at", "at", required=True, metavar='"YYYY-MM-DD HH:MM"',
              help="Local send time (wall clock of --tz).")
@click.option("--tz", metavar="Area/City", help="Time zone of --at (default: the `timezone` setting).")
@click.pass_context
@library_errors(flags={"at": "--at", "timezone": "--tz"})
def schedule_set(ctx: click.Context, month: str, at: str, tz: str | None) -> None:
    """Schedule (or reschedule) the month's edition after checking that it is sendable.

    Example:

        newsletter schedule set 2026-12 --at "2026-12-01 09:00" --tz America/Toronto
    """
    row = editions.schedule(open_newsletter(ctx), month, at, tz)
    click.echo(f"{row.month}: scheduled for {row.local}, {row.as_dict()['utc']}.")


@schedule.command("list")
@click.option("--tz", metavar="Area/City", help="Show local times in this zone.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.pass_context
@library_errors(flags={"timezone": "--tz"})
def schedule_list(ctx: click.Context, tz: str | None, as_json: bool) -> None:
    """List editions with a send time: local and UTC time, and state.

    Example:

        newsletter schedule list --json
    """
    rows: list[dict[str, Any]] = [r.as_dict() for r in editions.list_schedules(open_newsletter(ctx), tz)]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        click.echo(f"{row['month']}  {row['state']:<10} {row['local']:<40} {row['utc']}")
    if not rows:
        click.echo("Nothing scheduled.")


@schedule.command("rule")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.pass_context
@library_errors
def schedule_rule(ctx: click.Context, as_json: bool) -> None:
    """Show the monthly rule (`recurring_rule`): its next sends and reminders, and its decisions.

    Example:

        NEWSLETTER_RECURRING_RULE="first tuesday 09:00" newsletter schedule rule
    """
    nl = open_newsletter(ctx)
    monthly = MonthlyRule.of(nl.config)
    if monthly is None:
        raise ConfigError("no monthly rule: set recurring_rule, e.g. \"first tuesday 09:00\"")
    info = describe(nl, monthly, utcnow())
    if as_json:
        emit_json(info)
        return
    click.echo(f"Monthly rule: {info['rule']} ({info['timezone']}), reminder "
               f"{info['reminder_days_before']} days before; active since "
               f"{info['active_since'] or 'the first scheduler start'}.")
    for due in info["next"]:
        click.echo(f"  next {due['kind']:<8} {due['month']}  {due['local']}")
    for done in info["decisions"]:
        detail = f": {done['detail']}" if done["detail"] else ""
        click.echo(f"  {done['outcome']:<10} {done['kind']:<8} {done['month']}  {done['due']}{detail}")


@schedule.command("cancel")
@click.argument("month")
@click.pass_context
@library_errors
def schedule_cancel(ctx: click.Context, month: str) -> None:
    """Take the month's edition off the schedule; it goes back to draft.

    Example:

        newsletter schedule cancel 2026-12
    """
    editions.unschedule(open_newsletter(ctx), month)
    click.echo(f"{month}: no longer scheduled (draft).")


@edition.command("test-send")
@click.argument("month")
@click.option("--to", "to", required=True, metavar="ADDRESS", help="Who gets the test copy.")
@click.option("--topics", metavar="SLUG,SLUG", help="Send the copy a subscriber of these topics gets.")
@click.pass_context
@library_errors(flags={"topics": "--topics"})
def edition_test_send(ctx: click.Context, month: str, to: str, topics: str | None) -> None:
    """Send one copy, subject prefixed "[TEST] ", outside the ledger.

    Example:

        newsletter edition test-send 2026-12 --to editor@example.org --topics empathy
    """
    nl = open_newsletter(ctx)
    chosen = frozenset(t.strip() for t in topics.split(",") if t.strip()) if topics else None
    if chosen is not None:
        with nl.session() as session:
            unknown = chosen - set(topic_slugs(session))
        if unknown:
            raise ContentError(f"unknown topic(s) {', '.join(sorted(unknown))}", field="--topics")
    variant = send_test_copy(nl, month, to, chosen)
    click.echo(f"{month}: test copy (summaries {variant}) sent to {to}.")


def _log_to_stderr() -> None:
    """Our decisions at INFO; APScheduler's per-run chatter (every poll) only when it goes wrong."""
    logging.basicConfig(level=logging.INFO, format=_LOG_FORMAT)
    logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)


@cli.command()
@click.option("--poll", default=10.0, show_default=True, type=click.FloatRange(0.5, 3600),
              help="Seconds between checks for new, moved or cancelled schedules.")
@click.pass_context
@library_errors
def scheduler(ctx: click.Context, poll: float) -> None:
    """Run the scheduler in the foreground until SIGTERM or Ctrl-C.

    Sends each scheduled edition at its time; a send up to `schedule_grace_hours` late still
    goes out, later ones are marked missed and the editor is told. Logs go to stderr.

    Example:

        NEWSLETTER_EDITOR_EMAIL=editor@example.org newsletter scheduler
    """
    from ..schedule.process import run_until_signalled

    _log_to_stderr()
    run_until_signalled(open_newsletter(ctx), poll_seconds=poll)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256))
@click.pass_context
@library_errors
def run(ctx: click.Context, host: str, port: int, threads: int) -> None:
    """Run the scheduler and the web app in one process (a one-machine deployment).

    Example:

        NEWSLETTER_SECRET_KEY=... newsletter run --host 127.0.0.1 --port 8000
    """
    import waitress

    from ..schedule.process import run_until_signalled
    from ..web.serve import waitress_app

    _log_to_stderr()
    nl = open_newsletter(ctx)
    app, settings = waitress_app(nl)
    server = waitress.create_server(app, host=host, port=port, threads=threads, **settings)
    click.echo(f"Serving {nl.config.base_url} and running the scheduler. Ctrl+C stops.", err=True)
    run_until_signalled(nl, serve=server.run)
