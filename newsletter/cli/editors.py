"""`editors …` and `audit`: the console's people and its audit log, from the command line."""

from __future__ import annotations

import sys

import click

from ..editors import accounts, audit
from ..editors.models import Role
from . import cli, emit_json, library_errors, open_newsletter


@cli.group()
def editors() -> None:
    """Add, list and remove the people who use the console at /admin.

    Example:

        newsletter editors add ada@example.org --name "Ada Lovelace"
    """


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@editors.command("add")
@click.argument("email")
@click.option("--name", required=True, help="The editor's name, shown in the console.")
@click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.EDITOR.value,
              show_default=True, help="owner manages editors; the first editor is always an owner.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of "
              "standard input instead of a prompt.")
@click.pass_context
@library_errors(flags={"email": "EMAIL", "name": "--name", "password": "the password"})
def editors_add(ctx: click.Context, email: str, name: str, role: str, password_stdin: bool) -> None:
    """Add an editor who can sign in at /admin (password hashed with argon2id).

    Example:

        newsletter editors add ada@example.org --name Ada --password-stdin < pw
    """
    nl = open_newsletter(ctx)
    password = _read_password(password_stdin)
    with nl.session() as session:
        editor = accounts.add_editor(session, email, name=name, password=password,
                                     role=Role(role))
        click.echo(f"Added {editor.email} as {editor.role.value}.")


@editors.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.pass_context
@library_errors
def editors_list(ctx: click.Context, as_json: bool) -> None:
    """List the editors: address, name, role, whether 2FA is on.

    Example:

        newsletter editors list --json
    """
    nl = open_newsletter(ctx)
    with nl.session() as session:
        rows = [{"email": e.email, "name": e.name, "role": e.role.value,
                 "two_factor": e.has_second_factor, "created_at": e.created_at.isoformat()}
                for e in accounts.list_editors(session) if e.disabled_at is None]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        click.echo(f"{row['email']:<40} {row['role']:<7} {'2FA' if row['two_factor'] else '-':<4} "
                   f"{row['name']}")


@editors.command("remove")
@click.argument("email")
@click.pass_context
@library_errors(flags={"email": "EMAIL"})
def editors_remove(ctx: click.Context, email: str) -> None:
    """Remove an editor: their sessions end at once (the last owner cannot be removed).

    Example:

        newsletter editors remove ada@example.org
    """
    nl = open_newsletter(ctx)
    with nl.session() as session:
        accounts.remove_editor(session, email)
    click.echo(f"Removed {email}; their sessions are ended.")


@editors.command("reset-2fa")
@click.argument("email")
@click.pass_context
@library_errors(flags={"email": "EMAIL"})
def editors_reset_2fa(ctx: click.Context, email: str) -> None:
    """Turn off an editor's 2FA (lost phone): codes and sessions end; they set it up again.

    Example:

        newsletter editors reset-2fa ada@example.org
    """
    nl = open_newsletter(ctx)
    with nl.session() as session:
        editor = accounts.reset_second_factor(session, email)
        click.echo(f"2FA is off for {editor.email}; every session of theirs is ended.")


@cli.command("audit")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000),
              help="Newest entries to show.")
@click.pass_context
@library_errors
def audit_command(ctx: click.Context, as_json: bool, limit: int) -> None:
    """Print the audit log, newest first: logins, editor changes and what editors did.

    Example:

        newsletter audit --json --limit 20
    """
    nl = open_newsletter(ctx)
    with nl.session() as session:
        rows = [audit.as_document(e) for e in audit.entries(session, per_page=limit).entries]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        detail = ", ".join(f"{k}={v}" for k, v in row["detail"].items())
        click.echo(f"{row['at']}  {row['action']:<16} {row['actor']:<32} {row['client']:<15} "
                   f"{detail}")
