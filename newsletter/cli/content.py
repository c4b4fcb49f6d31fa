"""`summary …` and `edition …`: what the editor writes and assembles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..content.store import assemble_edition, edition_content, get_edition, list_summaries
from ..content.summary_file import read_summary_file
from ..errors import ContentError, ContentErrors
from ..preview import write_preview
from ..taxonomy import research_type_slugs, topic_slugs
from . import cli, emit_json, library_errors, open_newsletter


@cli.group()
def summary() -> None:
    """Add and list research summaries."""


@summary.command("add")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
@library_errors
def summary_add(ctx: click.Context, files: tuple[Path, ...]) -> None:
    """Add or update summaries from Markdown files with YAML front matter.

    Every file is checked; valid files are stored even when others have errors.

    Example:

        newsletter summary add summaries/2015-01-*.md
    """
    from ..content.store import upsert_summary
    nl = open_newsletter(ctx)
    problems: list[ContentError] = []
    with nl.session() as session:
        topics, types = topic_slugs(session), research_type_slugs(session)
    for path in files:
        try:
            draft = read_summary_file(path, topics=topics, research_types=types)
        except ContentErrors as err:
            problems.extend(err.errors)
            continue
        except ContentError as err:
            problems.append(err)
            continue
        with nl.session() as session:
            result = upsert_summary(session, draft)
            verb = "added" if result.created else "updated"
            click.echo(f"{verb} {draft.month} #{result.summary.id}: {draft.headline} ({path})")
    if problems:
        raise ContentErrors(problems)


@summary.command("list")
@click.option("--month", metavar="YYYY-MM", help="Only this month.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.pass_context
@library_errors
def summary_list(ctx: click.Context, month: str | None, as_json: bool) -> None:
    """List summaries, newest month first.

    Example:

        newsletter summary list --month 2015-01
    """
    nl = open_newsletter(ctx)
    with nl.session() as session:
        rows: list[dict[str, Any]] = [{"id": s.id, "uid": s.uid, "month": s.month, "status": s.status.value,
                 "headline": s.headline, "research_type": s.research_type.slug,
                 "topics": [t.slug for t in s.topics], "source_file": s.source_file}
                for s in list_summaries(session, month)]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        click.echo(f"{row['month']}  #{row['id']:<4} {row['status']:<6} {row['headline']}  "
                   f"[{', '.join(row['topics'])}]")
    if not rows:
        click.echo("No summaries.")


@cli.group()
def edition() -> None:
    """Assemble and preview a month's edition."""


@edition.command("assemble")
@click.argument("month")
@click.option("--subject", help="Subject line (default: derived from the headlines).")
@click.option("--preheader", help="Preview text shown after the subject in inboxes.")
@click.option("--order", metavar="ID,ID,...", help="Summary ids in the order to print them.")
@click.pass_context
@library_errors
def edition_assemble(ctx: click.Context, month: str, subject: str | None,
                     preheader: str | None, order: str | None) -> None:
    """Gather the month's ready summaries into its edition and fix their order.

    Example:

        newsletter edition assemble 2015-01 --order 12,10,11
    """
    nl = open_newsletter(ctx)
    try:
        ids = [int(part) for part in order.split(",")] if order else None
    except ValueError as err:
        raise ContentError(f"--order {order!r}: expected summary ids like 12,10,11") from err
    with nl.session() as session:
        assembly = assemble_edition(session, month, order=ids, subject=subject,
                                    preheader=preheader)
    for warning in assembly.warnings:
        click.echo(f"Warning: {warning}", err=True)
    click.echo(f"Edition {month}: {len(assembly.edition.items)} summaries")
    for position, item in enumerate(assembly.edition.items, 1):
        click.echo(f"  {position}. #{item.id} {item.headline}")
    if assembly.edition.subject:
        click.echo(f"Subject: {assembly.edition.subject}")


@edition.command("preview")
@click.argument("month")
@click.option("--topics", metavar="SLUG,SLUG", help="Preview as a subscriber of these topics.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="HTML file to write (the .txt and .eml go beside it).")
@click.pass_context
@library_errors
def edition_preview(ctx: click.Context, month: str, topics: str | None, out: Path | None) -> None:
    """Write the edition exactly as a subscriber would receive it (HTML, text and .eml).

    Example:

        newsletter edition preview 2015-01 --topics empathy,training --out preview/jan.html
    """
    nl = open_newsletter(ctx)
    chosen = frozenset(t.strip() for t in topics.split(",") if t.strip()) if topics else None
    with nl.session() as session:
        if chosen is not None:
            unknown = chosen - set(topic_slugs(session))
            if unknown:
                raise ContentError(f"unknown topic(s) {', '.join(sorted(unknown))}",
                                   field="--topics")
        content = edition_content(get_edition(session, month))
    target = out or Path("preview") / f"{month}{'-' + '-'.join(sorted(chosen)) if chosen else ''}.html"
    written = write_preview(nl, content, chosen, target)
    if written is None:
        click.echo("A subscriber of these topics receives nothing this month.")
        return
    for path in written:
        click.echo(f"wrote {path}")




@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.pass_context
@library_errors
def topics(ctx: click.Context, as_json: bool) -> None:
    """List the topic taxonomy: the slugs that summaries and subscribers use.

    Example:

        newsletter topics --json
    """
    from sqlalchemy import select

    from ..db.models import Topic
    nl = open_newsletter(ctx)
    with nl.session() as session:
        rows = [{"slug": t.slug, "name": t.name, "original_name": t.original_name}
                for t in session.scalars(select(Topic).order_by(Topic.position))]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        click.echo(f"{row['slug']:<58} {row['name']}")


from . import summary_crossref  # noqa: E402,F401  (registers summary new/updates/acknowledge/revisions/restore/export)
