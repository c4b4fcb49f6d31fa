"""`send`, `status`, `pause`, `resume`, `cancel`: deliver an edition, steer it, and answer
"who received it"."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import click

from ..feedback.report import describe_feedback
from ..notify.notifier import Notifier
from ..sending import control
from ..sending.outcomes import SendReport, StopReason
from ..sending.report import plan_without_sending
from ..sending.run import send_edition
from ..sending.worker import PLANNED, join_edition, running_month
from ..status import status_document
from . import cli, emit_json, library_errors, open_newsletter
from .progress import progress_reporter

WORKER_POLL_SECONDS = 1.0


@cli.command()
@click.argument("month")
@click.option("--dry-run", is_flag=True, help="Show who would get which variant; send nothing.")
@click.option("--resend-uncertain", is_flag=True,
              help="Also send to recipients whose earlier delivery is uncertain (a crash, or an "
              "answer lost after the message went out): some may get a second copy.")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Worker processes on this host, each with its own connections (default: the "
              "workers setting). More can join from any host: `newsletter worker`.")
@click.pass_context
@library_errors
def send(ctx: click.Context, month: str, dry_run: bool, resend_uncertain: bool,
         workers: int | None) -> None:
    """Deliver the month's edition to every matching subscriber, exactly once.

    Running it again sends only what is still due; nobody is mailed twice. Temporary failures
    are retried within the run with backoff. SIGTERM or Ctrl-C finish the current batch, record
    it and stop; `newsletter pause`/`cancel` stop a running send the same way. With
    `--workers N` the edition is planned once, then N processes claim batches side by side.

    Example:

        NEWSLETTER_SMTP_HOST=mail.example.org newsletter send 2015-01 --workers 2
    """
    nl = open_newsletter(ctx)
    if dry_run:
        plan = plan_without_sending(nl, month)
        click.echo(f"{month}: {plan.recipients} recipients, {plan.no_match} without a matching "
                   f"topic (skipped), {len(plan.by_variant)} variants")
        for variant, headlines, count in plan.variants:
            click.echo(f"  {count:>6} × [{variant}] " + " | ".join(headlines))
        return
    processes = workers if workers is not None else nl.config.workers
    label = f"Sending {month}" + (f" ({processes} workers)" if processes > 1 else "")
    with progress_reporter(label) as progress, stop_on_signals() as stop:
        report = send_edition(nl, month, resend_uncertain=resend_uncertain, workers=processes,
                              progress=progress, stop=stop)
    _print_report(month, report)
    if report.stopped is StopReason.UNREACHABLE:
        Notifier(nl.config, store=nl).unreachable(report)


@cli.command()
@click.argument("month", required=False)
@click.option("--wait", is_flag=True, help="If no send is running, wait for one (checking every "
              "few seconds) instead of exiting; for a worker kept running by systemd.")
@click.option("--quiet", is_flag=True, help="Print nothing when done (errors still go to stderr).")
@click.option("--when-planned", is_flag=True, hidden=True,
              help="Start up, then wait for the line the send that started this worker writes to "
              "its standard input once the plan is written; at the end of input, exit.")
@click.pass_context
@library_errors
def worker(ctx: click.Context, month: str | None, wait: bool, quiet: bool,
           when_planned: bool) -> None:
    """Join the running send (of MONTH, or whichever is running) as one more worker.

    Works from any host that reaches the same PostgreSQL: claims its own batches with its own
    connections until nothing is due, then exits. Pause, cancel and SIGTERM stop it after its
    current batch, like `send`. Exits 1 when no send is running (unless --wait).

    Example:

        newsletter worker 2015-01
    """
    nl = open_newsletter(ctx)
    if when_planned and sys.stdin.buffer.readline() != PLANNED:
        return  # the send that started this worker ended before its plan was written
    with stop_on_signals() as stop:
        while True:
            joining = month or running_month(nl)
            report = join_edition(nl, joining, stop=stop) if joining else None
            if report is not None or not wait or stop.wait(WORKER_POLL_SECONDS):
                break
    if report is None:
        if stop.is_set():
            return
        raise click.ClickException(f"no send {'of ' + month + ' ' if month else ''}is running; "
                                   "start one with `newsletter send MONTH`")
    if not quiet:
        click.echo(f"{report.month}: this worker sent {report.sent}, failed {report.failed}, "
                   f"rejected {report.rejected}, uncertain {report.uncertain}, in "
                   f"{report.elapsed:.1f}s ({report.rate:,.0f} msg/s)")
        if report.stopped:
            click.echo(f"Stopped: {report.stopped}.")


def _print_report(month: str, report: SendReport) -> None:
    click.echo(f"{month}: sent {report.sent}, skipped {report.planned.no_match} (no matching topic), "
               f"failed {report.failed}, rejected {report.rejected}, "
               f"in {report.elapsed:.1f}s ({report.rate:,.0f} msg/s, "
               f"{report.variants_rendered} variants rendered)")
    if report.left:
        click.echo(f"{report.left} left the list or paused during the send; they got nothing.")
    if report.retried:
        click.echo(f"{report.retried} temporary failures were retried.")
    uncertain = report.ledger.get("uncertain", report.recovered_uncertain + report.uncertain)
    if uncertain:
        click.echo(f"Warning: {uncertain} deliveries are uncertain (a crash or a lost answer); "
                   "see `newsletter status`, resend with --resend-uncertain.", err=True)
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
    (uncertain, failed: attempts, reason, next attempt) and the last run's throughput, all its
    workers added up (one line each when there were several).

    Rows a dead worker left in flight are settled first, by its journal, as the next send
    would settle them.

    Example:

        newsletter status 2015-01 --json
    """
    document = status_document(open_newsletter(ctx), month)
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
    _echo_workers(document["workers"])
    if document["feedback"] is not None:
        click.echo("  " + describe_feedback(document["feedback"]))
    for row in document["attention"]:
        _echo_delivery(row)
    clicks = document["clicks"]
    if clicks["tracking"] or clicks["total"]:
        click.echo(f"  clicks: {clicks['total']} ({clicks['approximate']})")
        for summary in clicks["summaries"]:
            click.echo(f"  {summary['clicks']:>7}  {summary['headline'] or summary['summary_uid']}")
            for link in summary["links"]:
                click.echo(f"  {link['clicks']:>9}  {link['url']}")
    if show_all:
        for row in document["deliveries"]:
            _echo_delivery(row)


def _echo_workers(workers: list[dict[str, Any]]) -> None:
    """One line per process when the send had more than one: together they make the last run."""
    if len(workers) < 2:
        return
    for w in workers:
        click.echo(f"    {w['role']:<6} {w['host']}:{w['pid']:<8} sent {w['sent']:>8}  "
                   f"{'live' if w['live'] else 'ended'}")


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
