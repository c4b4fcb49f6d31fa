"""`serve`, and the audience commands that protect people: show, erase, suppress, purge."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import click

from subscribers import admin
from subscribers.flows import Flows

from .. import privacy
from ..errors import ContentError
from ..feedback.history import subscriber_history
from ..web.serve import waitress_app
from . import cli, emit_json, library_errors, open_newsletter
from .audience import subscribers


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256),
              help="Requests served at once.")
@click.pass_context
@library_errors
def serve(ctx: click.Context, host: str, port: int, threads: int) -> None:
    """Serve the public pages (subscribe, confirm, preferences, unsubscribe) with waitress.

    Waitress is a production WSGI server; put a TLS-terminating reverse proxy in front of it
    and set NEWSLETTER_BASE_URL to the public https address (see docs/web.md).

    Example:

        NEWSLETTER_SECRET_KEY=... newsletter serve --host 127.0.0.1 --port 8000
    """
    import waitress

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    nl = open_newsletter(ctx)
    app, settings = waitress_app(nl)
    click.echo(f"Serving {nl.config.base_url} with waitress ({threads} threads){_proxy_note(settings)}."
               " Ctrl+C stops.", err=True)
    waitress.serve(app, host=host, port=port, threads=threads, **settings)


def _proxy_note(settings: dict[str, Any]) -> str:
    if "trusted_proxy" not in settings:
        return ""
    return (f", believing X-Forwarded-For/-Proto from {settings['trusted_proxy']} "
            f"({settings['trusted_proxy_count']} hop(s))")


def _flows(ctx: click.Context) -> Flows:
    return Flows(open_newsletter(ctx))


@subscribers.command("show")
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.pass_context
@library_errors
def subscribers_show(ctx: click.Context, email: str, as_json: bool) -> None:
    """Show everything held about one address: record, topics, consent, suppression, deliveries.

    Example:

        newsletter subscribers show ada@example.org --json
    """
    nl = open_newsletter(ctx)
    record = privacy.describe(nl, email)
    if record is None:
        raise ContentError("nothing is held about this address", field="email")
    record["feedback"] = subscriber_history(nl, record["email"])
    if as_json:
        emit_json(record)
        return
    subscriber, suppression = record["subscriber"], record["suppression"]
    click.echo(record["email"])
    if subscriber is not None:
        topics = "all" if subscriber["topics"] is None else ", ".join(subscriber["topics"]) or "none"
        consent = subscriber["consent"]
        click.echo(f"  name: {subscriber['name'] or '-'}\n  status: {subscriber['status']}\n"
                   f"  topics: {topics}\n  consent: {consent['method']} at {consent['at']} "
                   f"({consent['source'] or 'no source'})\n"
                   f"  editions received: {len(subscriber['deliveries'])}")
        if subscriber["paused_at"] is not None:
            click.echo(f"  paused since: {subscriber['paused_at']}")
    if suppression is not None:
        click.echo(f"  suppressed: {suppression['reason']} since {suppression['created_at']}")
    for event in record["feedback"]:
        click.echo(f"  {event['at']:%Y-%m-%d %H:%M} {event['kind']:<12} {event['source']:<9} "
                   f"{event['edition'] or '-':<8} {event['reason'] or '-'}")


@subscribers.command("erase")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
@library_errors
def subscribers_erase(ctx: click.Context, email: str, yes: bool) -> None:
    """Delete all personal data of an address; keep only its hash so it is never mailed again.

    The subscriber record, topic choices and delivery history go; a suppression entry holding
    only the address's hash stays, so no import or signup can bring the person back.

    Example:

        newsletter subscribers erase ada@example.org --yes
    """
    if not yes:
        click.confirm(f"Erase everything held about {email}?", abort=True)
    had_record = privacy.erase(open_newsletter(ctx), email)
    click.echo(f"{email}: {'erased' if had_record else 'no record held'}; suppressed by hash.")


@subscribers.command("suppress")
@click.argument("email")
@click.option("--reason", default="manual", show_default=True,
              help="Why (one line, up to 50 characters).")
@click.pass_context
@library_errors
def subscribers_suppress(ctx: click.Context, email: str, reason: str) -> None:
    """Never mail this address again, whatever its status, until unsuppressed.

    Example:

        newsletter subscribers suppress ada@example.org --reason "asked by phone"
    """
    with open_newsletter(ctx).session() as session:
        admin.suppress(session, email, reason, actor="cli")
    click.echo(f"{email}: suppressed ({admin.check_reason(reason)}).")


@subscribers.command("unsuppress")
@click.argument("email")
@click.option("--reason", default="manual", show_default=True,
              help="Why (one line, up to 50 characters; kept in the audit log).")
@click.pass_context
@library_errors
def subscribers_unsuppress(ctx: click.Context, email: str, reason: str) -> None:
    """Allow an address to be mailed again (its subscriber status is left as it is).

    Example:

        newsletter subscribers unsuppress ada@example.org --reason "asked to come back"
    """
    with open_newsletter(ctx).session() as session:
        was = admin.unsuppress(session, email, reason, actor="cli")
    if was is None:
        raise ContentError("this address is not suppressed", field="email")
    click.echo(f"{email}: no longer suppressed (was: {was}).")


@subscribers.command("purge-unconfirmed")
@click.option("--older-than-days", type=click.IntRange(0, None),
              help="Age of the signups to delete (default: the confirmation link's lifetime).")
@click.pass_context
@library_errors
def subscribers_purge_unconfirmed(ctx: click.Context, older_than_days: int | None) -> None:
    """Delete signups that were never confirmed and whose confirmation link has expired.

    Example:

        newsletter subscribers purge-unconfirmed --older-than-days 7
    """
    flows = _flows(ctx)
    age = timedelta(days=older_than_days) if older_than_days is not None else None
    count = flows.purge_unconfirmed(age)
    days = older_than_days if older_than_days is not None else flows.confirm_expiry.days
    click.echo(f"Deleted {count} unconfirmed signup(s) older than {days} days.")
