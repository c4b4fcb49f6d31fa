"""`summary new --doi`, `updates`, `acknowledge`, `revisions`, `restore`, `export`: a summary's
citation from Crossref, the retraction guard, and its saved versions."""

from __future__ import annotations

import getpass
from pathlib import Path

import click

from ..content.autofill import skeleton_text
from ..content.restore import restore_revision
from ..content.revisions import export_summary, list_revisions
from ..content.updates import acknowledge, check_updates, client_of
from ..db import utcnow
from ..errors import ContentError
from ..taxonomy import research_type_slugs, topic_slugs
from . import emit_json, library_errors, open_newsletter
from .content import summary


def _who(by: str | None) -> str:
    try:
        return by or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _write(text: str, out: Path | None) -> None:
    """To `out` (never over an existing file), else stdout."""
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        with out.open("x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError as err:
        raise ContentError(f"{out} exists; choose another --out or remove it",
                           field="--out") from err
    except OSError as err:
        raise ContentError(f"cannot write {out}: {err.strerror or err}", field="--out") from err
    click.echo(f"wrote {out}", err=True)


@summary.command("new")
@click.option("--doi", required=True, help="The article's DOI (10.…, doi:…, or a doi.org link).")
@click.option("--month", metavar="YYYY-MM", help="The edition month (default: this month).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="File to write (default: stdout); an existing file is never overwritten.")
@click.pass_context
@library_errors
def summary_new(ctx: click.Context, doi: str, month: str | None, out: Path | None) -> None:
    """Begin a summary file with its citation filled from Crossref.

    The file is a draft: write the headline, pick the topics and the research type, check the
    citation (Crossref's titles are in publisher casing; the file's comments suggest APA's
    sentence case), then `newsletter summary add` it.

    Example:

        newsletter summary new --doi 10.1037/pst0000172 --month 2026-12 --out summaries/new.md
    """
    from ..content.assemble import check_month
    from ..crossref import LookupFailure
    nl = open_newsletter(ctx, ready=False)
    month = check_month(month or f"{utcnow():%Y-%m}")
    client = client_of(nl)
    if client is None:
        raise ContentError("crossref_url is empty, so Crossref is not asked; set "
                           "NEWSLETTER_CROSSREF_URL (default https://api.crossref.org)",
                           field="--doi")
    work = client.work(doi)
    if isinstance(work, LookupFailure):
        raise ContentError(work.message, field="--doi")
    _write(skeleton_text(work, month), out)
    if work.title_needs_casing:
        click.echo(f"Title as Crossref gives it: {work.title_as_given}\n"
                   f"APA sentence case would be:  {work.suggested_title}", err=True)


@summary.command("updates")
@click.argument("month")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.pass_context
@library_errors
def summary_updates(ctx: click.Context, month: str, as_json: bool) -> None:
    """Ask Crossref for retractions, corrections and other notices about the month's DOIs.

    New notices are stored; an unacknowledged retraction blocks `newsletter schedule` until
    `newsletter summary acknowledge` records that it was read.

    Example:

        newsletter summary updates 2015-01 --json
    """
    check = check_updates(open_newsletter(ctx), month)
    if as_json:
        emit_json(check.as_dict())
        return
    for failure in check.failures:
        click.echo(f"Warning: {failure.doi}: {failure.message}", err=True)
    for summary_id in check.without_doi:
        click.echo(f"Warning: summary #{summary_id} has no DOI; it cannot be checked", err=True)
    for row in check.rows:
        state = (f"acknowledged by {row.acknowledged_by} {row.acknowledged_at:%Y-%m-%d}"
                 if row.acknowledged_at else "BLOCKS SCHEDULING" if row.blocking else "listed")
        click.echo(f"#{row.summary_id} {row.headline}: {row.label} ({row.kind}) "
                   f"{row.notice_doi} {row.date or ''} [{state}]")
    click.echo(f"{check.month}: asked about {check.asked} DOI(s); {len(check.rows)} notice(s), "
               f"{len(check.blocking)} blocking.")


@summary.command("acknowledge")
@click.argument("summary_id", metavar="ID", type=int)
@click.argument("notice_doi", metavar="NOTICE-DOI")
@click.option("--by", help="Who read the notice (default: your login name).")
@click.pass_context
@library_errors
def summary_acknowledge(ctx: click.Context, summary_id: int, notice_doi: str,
                        by: str | None) -> None:
    """Record that a notice about a summary's article was read; it then no longer blocks.

    Example:

        newsletter summary acknowledge 12 10.1037/pst0000999 --by "Dr. Tasca"
    """
    row = acknowledge(open_newsletter(ctx), summary_id, notice_doi, _who(by))
    click.echo(f"#{row.summary_id}: {row.label} {row.notice_doi} acknowledged by "
               f"{row.acknowledged_by}.")


@summary.command("revisions")
@click.argument("summary_id", metavar="ID", type=int)
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.pass_context
@library_errors
def summary_revisions(ctx: click.Context, summary_id: int, as_json: bool) -> None:
    """List a summary's saved versions, oldest first.

    Example:

        newsletter summary revisions 12
    """
    with open_newsletter(ctx).session() as session:
        rows = list_revisions(session, summary_id)
    if as_json:
        emit_json([row.as_dict() for row in rows])
        return
    for row in rows:
        click.echo(f"{row.number:>4}  {row.saved_at:%Y-%m-%d %H:%M} UTC  {row.status:<6} "
                   f"{row.saved_by}  {row.headline}")


@summary.command("restore")
@click.argument("summary_id", metavar="ID", type=int)
@click.argument("number", metavar="REV", type=int)
@click.option("--by", help="Who restores it (default: your login name).")
@click.pass_context
@library_errors
def summary_restore(ctx: click.Context, summary_id: int, number: int, by: str | None) -> None:
    """Make a saved version the summary's current one, checked as a summary file is.

    Example:

        newsletter summary restore 12 3
    """
    with open_newsletter(ctx).session() as session:
        topics, types = topic_slugs(session), research_type_slugs(session)
        result = restore_revision(session, summary_id, number, topics=topics,
                                  research_types=types,
                                  who=f"{_who(by)} (restored revision {number})")
        click.echo(f"#{result.summary.id}: revision {number} restored ({result.summary.headline}).")


@summary.command("export")
@click.argument("summary_id", metavar="ID", type=int)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="File to write (default: stdout); an existing file is never overwritten.")
@click.pass_context
@library_errors
def summary_export(ctx: click.Context, summary_id: int, out: Path | None) -> None:
    """Write a summary in its file form; `newsletter summary add` reads it back unchanged.

    Example:

        newsletter summary export 12 --out summaries/2015-01-ruptures.md
    """
    with open_newsletter(ctx).session() as session:
        text = export_summary(session, summary_id)
    _write(text, out)
