"""`newsletter editors …` and `newsletter audit` on a real store (SQLite and PostgreSQL): the
first editor is an owner, passwords from stdin, clear errors, the last owner kept, and the audit
log as JSON."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from newsletter.cli import cli

from .conftest import RunCli


def run(run_cli: RunCli, *args: str, stdin: str = "", code: int = 0) -> str:
    result = CliRunner().invoke(cli, list(args), env=run_cli.env, input=stdin,
                                catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


@pytest.mark.slow  # five argon2id hashes
def test_editors_from_the_command_line(run_cli: RunCli, database_url: str) -> None:
    run_cli("init")
    first = run(run_cli, "editors", "add", "Ada@Example.org", "--name", "Ada Lovelace",
                "--password-stdin", stdin="a long enough password\n")
    assert "Added ada@example.org as owner." in first  # the first editor is an owner
    run(run_cli, "editors", "add", "bob@example.org", "--name", "Bob", "--password-stdin",
        stdin="another long password\n")
    prompted = run(run_cli, "editors", "add", "cy@example.org", "--name", "Cy", "--role", "owner",
                   stdin="third long password\nthird long password\n")
    assert "Added cy@example.org as owner." in prompted
    listed = json.loads(run(run_cli, "editors", "list", "--json"))
    assert [(e["email"], e["role"], e["two_factor"]) for e in listed] == [
        ("ada@example.org", "owner", False), ("bob@example.org", "editor", False),
        ("cy@example.org", "owner", False)]
    assert "password" not in json.dumps(listed)
    run(run_cli, "editors", "reset-2fa", "bob@example.org")
    run(run_cli, "editors", "remove", "cy@example.org")
    entries = json.loads(run(run_cli, "audit", "--json"))
    assert [e["action"] for e in entries] == ["editor.remove", "editor.reset_2fa", "editor.add",
                                              "editor.add", "editor.add"]
    assert entries[0]["detail"] == {"editor": "cy@example.org"} and entries[0]["client"] == "cli"
    assert "editor.add" in run(run_cli, "audit")


def test_editor_commands_refuse_bad_input_clearly(run_cli: RunCli, database_url: str) -> None:
    run_cli("init")
    short = run(run_cli, "editors", "add", "ada@example.org", "--name", "Ada",
                "--password-stdin", stdin="short\n", code=1)
    assert "at least 12 characters" in short
    bad = run(run_cli, "editors", "add", "not-an-address", "--name", "Ada", "--password-stdin",
              stdin="a long enough password\n", code=1)
    assert "'not-an-address' is not an email address" in bad
    injected = run(run_cli, "editors", "add", "ada@example.org", "--name", "Ada\r\nBcc: x",
                   "--password-stdin", stdin="a long enough password\n", code=1)
    assert "--name" in injected and "U+000D" in injected
    run(run_cli, "editors", "add", "ada@example.org", "--name", "Ada", "--password-stdin",
        stdin="a long enough password\n")
    again = run(run_cli, "editors", "add", "ADA@example.org", "--name", "Ada", "--password-stdin",
                stdin="a long enough password\n", code=1)
    assert "already an editor ada@example.org" in again
    last = run(run_cli, "editors", "remove", "ada@example.org", code=1)
    assert "last owner" in last
    missing = run(run_cli, "editors", "reset-2fa", "nobody@example.org", code=1)
    assert "no editor 'nobody@example.org'" in missing
