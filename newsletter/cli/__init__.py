"""The `newsletter` command: parses arguments, calls the library, prints. No logic lives here."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload

import click

from ..config import describe_settings, load_config
from ..context import Newsletter
from ..errors import ConfigError, ContentError, ContentErrors, NewsletterError

F = TypeVar("F", bound=Callable[..., Any])


def emit_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, ensure_ascii=False, default=str))


@overload
def library_errors(function: F, /) -> F: ...


@overload
def library_errors(*, flags: Mapping[str, str]) -> Callable[[F], F]: ...


def library_errors(function: F | None = None, /, *,
                   flags: Mapping[str, str] | None = None) -> F | Callable[[F], F]:
    """Turn library errors into one clear message and exit code 1 (2 for configuration).

    The library names the field it refuses (`at`); `flags` maps such fields to this command's
    options (`{"at": "--at"}`), so the message names what the user typed.
    """
    if function is None:
        return functools.partial(library_errors, flags=flags)
    named = flags or {}

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except ContentErrors as err:
            for problem in err.errors:
                click.echo(f"Error: {_as_typed(problem, named)}", err=True)
            sys.exit(1)
        except ConfigError as err:
            click.echo(f"Configuration error: {err}", err=True)
            sys.exit(2)
        except ContentError as err:
            raise click.ClickException(_as_typed(err, named)) from err
        except NewsletterError as err:
            raise click.ClickException(str(err)) from err

    return wrapper


def _as_typed(err: ContentError, flags: Mapping[str, str]) -> str:
    flag = flags.get(err.field) if err.field else None
    if flag is None:
        return str(err)
    return str(ContentError(err.reason, source=err.source, line=err.line, field=flag))


def open_newsletter(ctx: click.Context, *, ready: bool = True) -> Newsletter:
    """The Newsletter for this invocation, opened once and closed when the command ends."""
    root = ctx.find_root()
    if root.obj is None:
        config = load_config(overrides={"database_url": root.params.get("database_url")})
        for warning in config.warnings:
            click.echo(f"Warning: {warning}", err=True)
        root.obj = Newsletter.open(config)
        root.call_on_close(root.obj.close)
    if ready:
        root.obj.require_ready()
    return root.obj


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="newsletter")
@click.option("--database-url", metavar="URL", help="Store to use (default: settings).")
def cli(database_url: str | None) -> None:
    """Publish a monthly research-summary email to topic-filtered subscribers.

    Example:

        newsletter init && newsletter summary add summaries/*.md
    """


@cli.command()
@click.pass_context
@library_errors
def init(ctx: click.Context) -> None:
    """Create or upgrade the store and load the topic taxonomy.

    Example:

        NEWSLETTER_DATABASE_URL=sqlite:///newsletter.db newsletter init
    """
    nl = open_newsletter(ctx, ready=False)
    added, total = nl.init()
    click.echo(f"Store ready at {nl.engine.url.render_as_string(hide_password=True)}: "
               f"{total} taxonomy entries ({added} new).")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def settings(as_json: bool) -> None:
    """List every setting, its environment variable, default, allowed range and meaning.

    Example:

        newsletter settings --json
    """
    table = describe_settings()
    if as_json:
        emit_json(table)
        return
    for s in table:
        default = "(secret)" if s["secret"] else repr(s["default"])
        allowed = f" [{s['allowed']}]" if s["allowed"] else ""
        click.echo(f"{s['env']:<32} {default:<40} {s['help']}{allowed}")


def main() -> None:
    cli(prog_name="newsletter")


from . import archive, audience, bounces, content, demo, editors, schedule, sending, web  # noqa: E402,F401  (each registers its commands)
