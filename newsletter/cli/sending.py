"""`send`, `status`, `pause`, `resume`, `cancel`: deliver an edition, steer it, and answer
"who received it"."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import click

from ..notify.notifier import Notifier
from ..sending import control
from ..sending.outcomes import SendReport, StopReason
from ..sending.report import edition_status, plan_without_sending
from ..sending.run import send_edition
from . import cli, emit_json, library_errors, open_newsletter
from .progress import progress_reporter


@cli.command()
@click.argument("month")
@click.option("--dry-run", is_flag=True, help="Show who would get which variant; send nothing.")
@click.option("--resend-uncertain", is_flag=True,
              help="Also send to recipients whose earlier delivery is uncertain (a crash, or an "
              "answer lost after the message went out): some may get a second copy.")
@click.pass_context
@library_errors
def send(ctx: click.Context, month: str, dry_run: bool, resend_uncertain: bool) -> None:
    """Deliver the month's edition to every matching subscriber, exactly once.

    Running it again sends only what is still due; nobody is mailed twice. Temporary failures
    are retried within the run with backoff. SIGTERM or Ctrl-C finish the current batch, record
    it and stop; `newsletter pause`/`cancel` stop a running send the same way.

    Example:

        NEWSLETTER_SMTP_HOST=mail.example.org newsletter send 2015-01
    """
    nl = open_newsletter(ctx)
    if dry_run:
        plan = plan_without_sending(nl, month)
        click.echo(f"{month}: {plan.recipients} recipients, {plan.no_match} without a matching "
                   f"topic (skipped), {len(plan.by_variant)} variants")
        for variant, headlines, count in plan.variants:
            click.echo(f"  {count:>6} × [{variant}] " + " | ".join(headlines))
        return
    with progress_reporter(f"Sending {month}") as progress, stop_on_signals() as stop:
        report = send_edition(nl, month, resend_uncertain=resend_uncertain, progress=progress,
                              stop=stop)
    _print_report(month, report)
    if report.stopped is StopReason.UNREACHABLE:
        Notifier(nl.config, store=nl).unreachable(report)


def _print_report(month: str, report: SendReport) -> None:
    click.echo(f"{month}: sent {report.sent}, skipped {report.planned.no_match} (no matching topic), "
               f"failed {report.failed}, rejected {report.rejected}, "
               f"in {report.elapsed:.1f}s ({report.rate:,.0f} msg/s, "
               f"{report.variants_rendered} variants rendered)")
    if report.left:
        click.echo(f"{report.left} left the list or paused during the send; they got nothing.")
    if report.retried:
        click.echo(f"{report.retried} temporary failures were retried.")
    if report.recovered_uncertain or report.uncertain:
        click.echo(f"Warning: {report.recovered_uncertain + report.uncertain} deliveries are "
                   "uncertain (a crash or a lost answer); see `newsletter status`, resend with "
                   "--resend-uncertain.", err=True)
    for reason, count in report.reasons.most_common():
        click.echo(f"  {count} × {reason}")
    if report.stopped is StopReason.UNREACHABLE:
        click.echo("Stopped: the mail server did not answer several connections in a row. Check "
                   f"that it is running, then `newsletter send {month}` continues.", err=True)
    elif report.stopped is StopReason.INTERRUPTED:
        click.echo(f"Stopped after the current batch; `newsletter send {month}` continues.")
    elif report.stopped:
        click.echo(f"The edition was {report.stopped}; stopped after the current batch.")
    elif not report.complete:
        click.echo("Some deliveries are still due; run `newsletter send` again later.")


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """SIGTERM or SIGINT set the event (the send finishes its batch and stops); a second one
    acts as usual."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()
        signal.signal(signum, previous[signal.Signals(signum)])
        click.echo(f"{signal.Signals(signum).name}: finishing the current batch, then stopping.",
                   err=True)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for number, action in previous.items():
            signal.signal(number, action)


@cli.command()
@click.argument("month")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.option("--all", "show_all", is_flag=True, help="Also list every delivery, one per line.")
@click.pass_context
@library_errors
def status(ctx: click.Context, month: str, as_json: bool, show_all: bool) -> None:
    """Who received the month's edition: counts by state, the deliveries that need attention
    (uncertain, failed: attempts, reason, next attempt) and the last run's throughput.

    Example:

        newsletter status 2015-01 --json
    """
    nl = open_newsletter(ctx)
    document = edition_status(nl, month)
    if as_json:
        emit_json(document)
        return
    click.echo(f"{month}: edition {document['edition_status']}")
    click.echo("  " + ", ".join(f"{k} {v}" for k, v in document["counts"].items()))
    run = document["last_run"]
    if run:
        state = "finished" if run["finished"] else "not finished"
        click.echo(f"  last run: {run['sent']} sent in {run['seconds']:.1f}s "
                   f"({run['per_second']:,.1f} msg/s), started {run['started_at']}, {state}")
    for row in document["attention"]:
        _echo_delivery(row)
    if show_all:
        for row in document["deliveries"]:
            _echo_delivery(row)


def _echo_delivery(row: dict[str, Any]) -> None:
    when = row["sent_at"] or row["updated_at"]
    line = f"  {row['status']:<9} {row['email']:<40} [{row['variant']}] {when}"
    if row["status"] in ("failed", "uncertain"):
        line += f"  attempts {row['attempts']}"
    if row["next_attempt_at"]:
        line += f", next {row['next_attempt_at']}"
    click.echo(line + (f"  {row['last_error']}" if row["last_error"] else ""))


@cli.command()
@click.argument("month")
@click.pass_context
@library_errors
def pause(ctx: click.Context, month: str) -> None:
    """Pause the month's send: a running send stops after its current batch.

    `send` refuses a paused edition until `resume`; nothing already sent is affected.

    Example:

        newsletter pause 2015-01
    """
    before = control.pause(open_newsletter(ctx), month)
    click.echo(f"{month}: paused (was {before.value}).")


@cli.command()
@click.argument("month")
@click.pass_context
@library_errors
def resume(ctx: click.Context, month: str) -> None:
    """Allow a paused edition to be sent again.

    Example:

        newsletter resume 2015-01 && newsletter send 2015-01
    """
    before = control.resume(open_newsletter(ctx), month)
    click.echo(f"{month}: resumed (was {before.value}); run `newsletter send {month}` to continue.")


@cli.command()
@click.argument("month")
@click.pass_context
@library_errors
def cancel(ctx: click.Context, month: str) -> None:
    """Cancel the month's send for good: a running send stops after its current batch.

    Example:

        newsletter cancel 2015-01
    """
    before = control.cancel(open_newsletter(ctx), month)
    click.echo(f"{month}: cancelled (was {before.value}); it will not be sent any further.")
