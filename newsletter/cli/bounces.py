"""`bounces ingest`: DSNs and complaint reports from a file, a pipe, a Maildir or IMAP."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ..bounces import IngestSummary, MaildirSource, OneMessage, ingest
from ..bounces.imap import SECURITY, ImapSettings, ImapSource
from ..bounces.sources import Source
from ..context import Newsletter
from ..errors import ConfigError, StoreError
from . import cli, emit_json, library_errors, open_newsletter
from .progress import progress_reporter

EX_DATAERR = 65
"""sysexits.h: the message cannot be read; the MTA returns it rather than retrying."""
EX_TEMPFAIL = 75
"""sysexits.h: the MTA keeps the message and pipes it again later."""


@cli.group("bounces")
def bounces_group() -> None:
    """Read bounces and complaints that come back to the VERP bounce address."""


@bounces_group.command("ingest")
@click.argument("file", required=False, metavar="[FILE|-]")
@click.option("--maildir", type=click.Path(file_okay=False, path_type=Path),
              help="Read the Maildir's new messages; each read one moves to cur (seen).")
@click.option("--done-folder", metavar="NAME",
              help="With --maildir: move read messages to this Maildir++ folder instead.")
@click.option("--imap", "imap_host", metavar="HOST", help="Poll this IMAP server.")
@click.option("--user", help="IMAP user.")
@click.option("--password-env", default="BOUNCES_IMAP_PASSWORD", show_default=True,
              metavar="VAR", help="Environment variable holding the IMAP password.")
@click.option("--port", type=click.IntRange(1, 65535), help="IMAP port (default 993, 143).")
@click.option("--security", type=click.Choice(SECURITY), default="ssl", show_default=True,
              help="IMAP TLS: ssl, starttls, or none (loopback only).")
@click.option("--folder", default="INBOX", show_default=True, help="IMAP folder to read.")
@click.option("--move-to", metavar="FOLDER", help="IMAP folder read messages move to.")
@click.option("--ca-file", type=click.Path(dir_okay=False), help="CA bundle for the IMAP TLS check.")
@click.option("--json", "as_json", is_flag=True, help="The summary as one JSON document.")
@click.pass_context
@library_errors
def bounces_ingest(ctx: click.Context, file: str | None, maildir: Path | None,
                   done_folder: str | None, imap_host: str | None, user: str | None,
                   password_env: str, port: int | None, security: str, folder: str,
                   move_to: str | None, ca_file: str | None, as_json: bool) -> None:
    """Record the bounces (RFC 3464 DSNs) and complaints (RFC 5965 ARF) in a message or mailbox.

    Each report counts only when its VERP tag (bounce+TAG@domain, NEWSLETTER_BOUNCE_ADDRESS)
    verifies and names a delivery to the address the report is about; auto-replies and other
    mail are ignored. Reading the same report again has no second effect. With FILE or - (a
    pipe from the MTA) the exit code is 75 (EX_TEMPFAIL) when the store failed, so the MTA
    keeps the message and tries again, and 65 (EX_DATAERR) when it cannot be read (too big);
    with -, a configuration error is 75 too: a bounce is not lost to a missing setting.

    Example:

        newsletter bounces ingest --maildir /var/mail/bounces

        newsletter bounces ingest --imap imap.example.org --user bounces --move-to Processed
    """
    chosen = [name for name, given in (("FILE", file), ("--maildir", maildir),
                                       ("--imap", imap_host)) if given]
    if len(chosen) != 1:
        raise click.UsageError("give exactly one of FILE (or - for standard input), --maildir, "
                               "--imap" + (f"; got {', '.join(chosen)}" if chosen else ""))
    if file is not None:
        summary = _one_message(ctx, file)
    elif maildir is not None:
        nl = open_newsletter(ctx)
        summary = _with_progress(nl, MaildirSource(maildir, done_folder), f"Reading {maildir}")
    else:
        nl = open_newsletter(ctx)
        imap = ImapSource(_imap_settings(imap_host or "", user, password_env, port, security,
                                         folder, move_to, ca_file))
        try:
            summary = _with_progress(nl, imap, f"Reading {imap.where}")
        finally:
            imap.close()
    _print(summary, as_json)
    if file is not None and summary.refused:
        sys.exit(EX_DATAERR)


def _one_message(ctx: click.Context, file: str) -> IngestSummary:
    """A file, or standard input as the MTA pipes it: what the MTA should retry exits 75."""
    piped = file == "-"
    try:
        return ingest(open_newsletter(ctx), OneMessage(file, sys.stdin.buffer if piped else None))
    except (StoreError, ConfigError) as err:
        if isinstance(err, ConfigError) and not piped:
            raise
        click.echo(f"{'Configuration error' if isinstance(err, ConfigError) else 'Error'}: {err}",
                   err=True)
        sys.exit(EX_TEMPFAIL)


def _with_progress(nl: Newsletter, source: Source, label: str) -> IngestSummary:
    with progress_reporter(label) as progress:
        return ingest(nl, source, progress=progress)


def _imap_settings(host: str, user: str | None, password_env: str, port: int | None,
                   security: str, folder: str, move_to: str | None,
                   ca_file: str | None) -> ImapSettings:
    if not user:
        raise click.UsageError("--imap needs --user")
    password = os.environ.get(password_env, "")
    if not password:
        raise ConfigError(f"{password_env} is not set: it holds the IMAP password (never a flag, "
                          "which other users could see)")
    return ImapSettings(host=host, user=user, password=password, port=port, security=security,
                        folder=folder, move_to=move_to, ca_file=ca_file)


def _print(summary: IngestSummary, as_json: bool) -> None:
    if as_json:
        emit_json(summary.as_dict())
        return
    for note in summary.notes:
        click.echo(note, err=True)
    click.echo(f"processed {summary.processed}: hard {summary.hard}, soft {summary.soft}, "
               f"complaints {summary.complaints}, ignored {summary.ignored}, unmatched "
               f"{summary.unmatched}" + "".join(
                   f", {name} {count}" for name, count in (
                       ("deferred", summary.deferred), ("delivered", summary.delivered),
                       ("already recorded", summary.duplicates), ("refused", summary.refused))
                   if count))
