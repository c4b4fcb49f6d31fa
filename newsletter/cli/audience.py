"""`subscribers …`: the audience, from the command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from subscribers import admin
from subscribers.addresses import InvalidAddress
from subscribers.flows import validate_name
from subscribers.models import ConsentMethod, Subscriber, SubscriberStatus
from subscribers.store import add_subscriber, list_subscribers

from ..context import Newsletter
from ..errors import ContentError
from ..taxonomy import topic_slugs
from . import cli, emit_json, library_errors, open_newsletter
from .progress import progress_reporter


def parse_topics_option(value: str | None, known: list[str]) -> frozenset[str] | None:
    """`a,b` → those slugs; empty or `all` → None (every topic, including future ones)."""
    if not value or value.strip().lower() == "all":
        return None
    chosen = frozenset(part.strip() for part in value.split(",") if part.strip())
    unknown = sorted(chosen - set(known))
    if unknown:
        raise ContentError(f"unknown topic(s) {', '.join(unknown)}; see `newsletter topics`",
                           field="--topics")
    return chosen


def status_text(subscriber: Subscriber) -> str:
    """`paused` for an active subscriber taking a break (admin.shown_status)."""
    return admin.shown_status(subscriber.status, subscriber.paused_at)


@cli.group()
def subscribers() -> None:
    """Add, import, list and export subscribers."""


@subscribers.command("add")
@click.argument("email")
@click.option("--name", default="", help="Name used in the To header.")
@click.option("--topics", metavar="SLUG,SLUG|all", help="Topics to receive (default: all).")
@click.pass_context
@library_errors
def subscribers_add(ctx: click.Context, email: str, name: str, topics: str | None) -> None:
    """Add an active subscriber, recorded as added by an administrator.

    Example:

        newsletter subscribers add ada@example.org --name "Ada Lovelace" --topics empathy,training
    """
    try:  # the web's and the CSV import's rules: the name goes into the To header
        name = validate_name(name)
    except ContentError as err:
        raise ContentError(err.reason, field="--name") from err
    nl = open_newsletter(ctx)
    with nl.session() as session:
        chosen = parse_topics_option(topics, topic_slugs(session))
        try:
            subscriber = add_subscriber(session, email, name=name, topics=chosen,
                                        method=ConsentMethod.ADMIN, source="cli: subscribers add")
        except InvalidAddress as err:
            raise ContentError(str(err), field="email") from err
        click.echo(f"{subscriber.email}: {subscriber.status.value}, "
                   f"topics: {', '.join(sorted(chosen)) if chosen else 'all'}")


@subscribers.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check every row and report; write nothing.")
@click.pass_context
@library_errors
def subscribers_import(ctx: click.Context, file: Path, dry_run: bool) -> None:
    """Import subscribers from a CSV file with columns email,name,topics[,language].

    Bad rows are reported with their line number and skipped; good rows are imported.
    Re-importing the same file changes nothing. Nobody who left is brought back. The
    optional language column (en or fr) sets the language of the emails; when it is absent
    or empty, new subscribers get English and known ones keep theirs. `--dry-run` gives the
    same report (the console's first step) and writes nothing.

    Example:

        newsletter subscribers import members.csv
    """
    nl = open_newsletter(ctx)
    with nl.session() as session, progress_reporter(f"Importing {file.name}") as progress:
        outcome = admin.import_csv(session, file.read_bytes(), str(file), dry_run=dry_run,
                                   actor="cli", name=file.name, progress=progress)
    report, problems = outcome.report, outcome.problems
    for problem in problems:
        click.echo(f"Error: {problem}", err=True)
    would = "would be " if dry_run else ""
    click.echo(f"{file}: {report.added} {would}added, {report.updated} {would}updated, "
               f"{report.unchanged} unchanged, {len(problems)} invalid rows skipped"
               + (" (dry run: nothing written)" if dry_run else ""))
    for reason, lines in report.skipped.items():
        click.echo(f"  skipped {len(lines)} ({reason}): lines {', '.join(map(str, lines))}")
    if problems:
        sys.exit(1)


@subscribers.command("list")
@click.option("--status", type=click.Choice([s.value for s in SubscriberStatus]))
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.option("--search", metavar="TEXT",
              help="Only those whose address or name contains TEXT, any case (the console's "
                   "search), newest first: address, name, status and id.")
@click.pass_context
@library_errors
def subscribers_list(ctx: click.Context, status: str | None, as_json: bool,
                     search: str | None) -> None:
    """List subscribers with their status (`paused` for an active subscriber taking a break)
    and topics. JSON keeps the stored status and adds `paused_at`.

    Example:

        newsletter subscribers list --status active --json
    """
    nl = open_newsletter(ctx)
    if search is not None:
        _list_found(nl, search, status or "", as_json)
        return
    with nl.session() as session:
        listed = list_subscribers(session, SubscriberStatus(status) if status else None)
        rows: list[dict[str, Any]] = [{"email": s.email, "name": s.name, "status": s.status.value,
                 "topics": None if s.all_topics else sorted(t.slug for t in s.topics),
                 "consent_method": s.consent_method.value, "created_at": s.created_at,
                 "paused_at": s.paused_at} for s in listed]
        shown_status = [status_text(s) for s in listed]
    if as_json:
        emit_json(rows)
        return
    for row, shown in zip(rows, shown_status, strict=True):
        topics = "all" if row["topics"] is None else ", ".join(row["topics"])
        click.echo(f"{shown:<12} {row['email']:<40} {row['name']:<25} {topics}")


def _list_found(nl: Newsletter, text: str, status: str, as_json: bool) -> None:
    found: list[dict[str, Any]] = []
    with nl.session() as session:
        page = 1
        while True:
            result = admin.search(session, text, status=status, page=page, per_page=1000)
            found += [{"id": r.id, "email": r.email, "name": r.name, "status": r.status,
                       "suppressed": r.suppressed, "created_at": r.created_at}
                      for r in result.rows]
            if page >= result.pages:
                break
            page += 1
    if as_json:
        emit_json(found)
        return
    for row in found:
        click.echo(f"{row['status']:<12} {row['email']:<40} {row['name']:<25} #{row['id']}")


@subscribers.command("export")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="File (default: stdout).")
@click.pass_context
@library_errors
def subscribers_export(ctx: click.Context, out: Path | None) -> None:
    """Export every subscriber as CSV (email,name,topics,status), safe to open in a spreadsheet.

    A paused subscriber's status is `paused`, and their topics are the ones kept for resuming.
    Import ignores the status column, so re-importing the file leaves pauses as they are.

    Example:

        newsletter subscribers export --out members.csv
    """
    nl = open_newsletter(ctx)
    with nl.session() as session:
        text = admin.export_csv(session, actor="cli")
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"wrote {out}", err=True)
