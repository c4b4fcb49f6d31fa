"""`send` and `status`: deliver an edition and answer "who received it"."""

from __future__ import annotations

import click

from ..sending.engine import Sender
from ..sending.report import edition_status, plan_without_sending
from ..transports import make_transport
from . import cli, emit_json, library_errors, open_newsletter
from .progress import progress_reporter


@cli.command()
@click.argument("month")
@click.option("--dry-run", is_flag=True, help="Show who would get which variant; send nothing.")
@click.option("--resend-uncertain", is_flag=True,
              help="Also send to recipients whose earlier delivery is uncertain (after a crash).")
@click.pass_context
@library_errors
def send(ctx: click.Context, month: str, dry_run: bool, resend_uncertain: bool) -> None:
    """Deliver the month's edition to every matching subscriber, exactly once.

    Running it again sends only what is still due; nobody is mailed twice.

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
    transport = make_transport(nl.config)
    try:
        with progress_reporter(f"Sending {month}") as progress:
            report = Sender(nl, transport, progress=progress).send(
                month, resend_uncertain=resend_uncertain)
    finally:
        transport.close()
    click.echo(f"{month}: sent {report.sent}, skipped {report.planned.no_match} (no matching topic), "
               f"failed {report.failed}, rejected {report.rejected}, "
               f"in {report.elapsed:.1f}s ({report.rate:,.0f} msg/s, "
               f"{report.variants_rendered} variants rendered)")
    if report.recovered_uncertain:
        click.echo(f"Warning: {report.recovered_uncertain} deliveries of an interrupted send are "
                   "uncertain; see `newsletter status`, resend with --resend-uncertain.", err=True)
    for reason, count in report.reasons.most_common():
        click.echo(f"  {count} × {reason}")
    if not report.complete:
        click.echo("Some deliveries are still due; run `newsletter send` again later.")


@cli.command()
@click.argument("month")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.pass_context
@library_errors
def status(ctx: click.Context, month: str, as_json: bool) -> None:
    """Who received the month's edition: counts by state and one line per subscriber.

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
    for row in document["deliveries"]:
        when = row["sent_at"] or row["updated_at"]
        line = f"  {row['status']:<9} {row['email']:<40} [{row['variant']}] {when}"
        click.echo(line + (f"  {row['last_error']}" if row["last_error"] else ""))
