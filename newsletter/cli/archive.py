"""`import-archive`, `archive build`, `summary tag` and `summary untagged`: the legacy blog in,
the web archive out."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..archive.importer import ImportReport, import_archive
from ..archive.site import build_site
from ..archive.tagging import list_untagged, tag_summary
from . import cli, emit_json, library_errors, open_newsletter
from .content import summary


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


def _print_report(report: ImportReport) -> None:
    click.echo(f"Read {_plural(report.posts, 'post')} in {_plural(len(report.months), 'month')} "
               f"from {report.source}.")
    click.echo(f"Summaries: {report.summaries_added} added, {report.summaries_updated} updated, "
               f"{report.summaries_unchanged} unchanged.")
    click.echo(f"Sent editions: {report.editions_added} added, {report.editions_updated} updated, "
               f"{report.editions_unchanged} unchanged.")
    if report.inferred:
        click.echo("Research types were inferred from each post's words (the blog did not record "
                   "them); correct one with `newsletter summary tag ID --type SLUG`:")
        for found in report.inferred:
            click.echo(f"  #{found.summary_id} {found.month} {found.research_type}: "
                       f"{found.headline} ({found.reason})")
    if report.untagged:
        click.echo(f"{_plural(report.untagged, 'summary', 'summaries')} without topics: list them "
                   "with `newsletter summary untagged`, tag with `newsletter summary tag ID TOPIC...`.")
    for problem in report.problems:
        label = "Warning" if problem.imported else "Error"
        click.echo(f"{label}: {report.source}:{problem.line}: {problem.reason}", err=True)


@cli.command("import-archive")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
@library_errors
def import_archive_command(ctx: click.Context, file: Path) -> None:
    """Import the legacy blog's archive: a ready summary per post, a sent edition per month.

    FILE is the blog's archive page as plain text. Posts that cannot be read completely are
    reported with their line and left out (exit status 1); the others are imported. Importing
    the same file again changes nothing.

    Example:

        newsletter import-archive legacy/archive.txt
    """
    nl = open_newsletter(ctx)
    report = import_archive(nl, file)
    _print_report(report)
    if report.skipped:
        sys.exit(1)


@cli.group("archive")
def archive_group() -> None:
    """Publish the sent editions as a static web archive."""


@archive_group.command("build")
@click.argument("out_dir", metavar="OUT", type=click.Path(file_okay=False, path_type=Path))
@click.option("--base-url", metavar="URL", help="Public URL the site is served from, for the "
              "feed's links (default: the base_url setting).")
@click.pass_context
@library_errors
def archive_build(ctx: click.Context, out_dir: Path, base_url: str | None) -> None:
    """Write the web archive of every sent edition to OUT/archive/.

    Pages per edition, summary, topic and research type, a search that runs in the browser, and
    an Atom feed; no file loads anything from elsewhere. Upload OUT/ so that OUT/archive/ is
    served at BASE_URL/archive/, where the emails' "view in your browser" links point.

    Example:

        newsletter archive build site/ --base-url https://pprnet.example.org
    """
    nl = open_newsletter(ctx)
    report = build_site(nl, out_dir, base_url=base_url)
    click.echo(f"Wrote {report.pages} files to {report.root}: "
               f"{_plural(report.editions, 'edition')}, "
               f"{_plural(report.summaries, 'summary', 'summaries')}.")
    click.echo(f"Open {report.root / 'index.html'}")


@summary.command("tag")
@click.argument("summary_id", metavar="ID", type=int)
@click.argument("topics", metavar="TOPIC...", nargs=-1)
@click.option("--type", "research_type", metavar="SLUG",
              help="Also set the research type (an import infers it).")
@click.pass_context
@library_errors
def summary_tag(ctx: click.Context, summary_id: int, topics: tuple[str, ...],
                research_type: str | None) -> None:
    """Add topics to a summary, such as one imported from the legacy blog.

    Topics it already has stay; see `newsletter topics` for the slugs.

    Example:

        newsletter summary tag 12 alliance-and-therapeutic-relationship training
    """
    nl = open_newsletter(ctx)
    with nl.session() as session:
        tagged = tag_summary(session, summary_id, topics, research_type=research_type)
        click.echo(f"#{tagged.id} {tagged.month} {tagged.headline}: "
                   f"{', '.join(t.slug for t in tagged.topics) or '(no topics)'} "
                   f"[{tagged.research_type.slug}]")


@summary.command("untagged")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.pass_context
@library_errors
def summary_untagged(ctx: click.Context, as_json: bool) -> None:
    """List summaries without topics (imported ones), newest month first, for tagging.

    Example:

        newsletter summary untagged --json
    """
    nl = open_newsletter(ctx)
    with nl.session() as session:
        rows = [{"id": s.id, "uid": s.uid, "month": s.month, "headline": s.headline,
                 "research_type": s.research_type.slug, "external_id": s.external_id}
                for s in list_untagged(session)]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        click.echo(f"{row['month']}  #{row['id']:<4} {row['headline']}  [{row['research_type']}]")
    if not rows:
        click.echo("Every summary has topics.")
