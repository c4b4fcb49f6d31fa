"""The CLI through click's CliRunner, against a real SQLite store: exact outputs and exit codes."""

from __future__ import annotations

import json
from email import message_from_bytes, policy
from pathlib import Path

import click
import pytest
from lxml import html as lxml_html

from newsletter.cli import cli
from newsletter.cli.reference import walk

from .conftest import REPO, RunCli

EXAMPLES = REPO / "newsletter" / "content" / "examples"


@pytest.fixture
def run(run_cli: RunCli, tmp_path: Path) -> RunCli:
    """`run_cli` on a store `newsletter init` has made, mailing .eml files to tmp_path/outbox."""
    run_cli.env.update(NEWSLETTER_TRANSPORT="outbox", NEWSLETTER_OUTBOX_DIR=str(tmp_path / "outbox"))
    run_cli("init")
    return run_cli


def load_examples(run) -> None:  # type: ignore[no-untyped-def]
    run("summary", "add", *sorted(str(p) for p in EXAMPLES.glob("2026-10-*.md")))
    run("edition", "assemble", "2026-10")


def test_every_command_has_help_with_an_example_and_is_in_the_reference() -> None:
    reference = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    commands = list(walk(cli))
    assert len(commands) >= 14
    for name, command in commands:
        help_text = command.get_help(click.Context(command, info_name=name))
        assert command.help and "Example:" in help_text, name
        assert f"## `newsletter {name}`" in reference, f"{name} missing from docs/cli.md"


def test_init_is_idempotent_and_loads_the_taxonomy(run) -> None:  # type: ignore[no-untyped-def]
    assert "44 taxonomy entries (0 new)" in run("init").stdout
    topics = json.loads(run("topics", "--json").stdout)
    assert len(topics) == 36
    assert {"slug": "trauma-and-or-ptsd", "name": "Trauma and/or PTSD",
            "original_name": None} in topics
    assert {"slug": "adherance", "name": "Adherence", "original_name": "Adherance"} in topics


def test_summary_add_twice_updates_instead_of_duplicating(run) -> None:  # type: ignore[no-untyped-def]
    path = str(EXAMPLES / "2026-10-alliance-meta-analysis.md")
    assert run("summary", "add", path).stdout.startswith("added 2026-10 #1:")
    assert run("summary", "add", path).stdout.startswith("updated 2026-10 #1:")
    listed = json.loads(run("summary", "list", "--json").stdout)
    assert [s["id"] for s in listed] == [1]


def test_bad_summary_file_names_file_line_and_field_and_keeps_the_good_one(
        run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    good = EXAMPLES / "2026-10-alliance-meta-analysis.md"
    bad = tmp_path / "bad.md"
    bad.write_text(good.read_text(encoding="utf-8")
                   .replace("  - common-factors", "  - alliance")
                   .replace("year: 2018", "year: soon"), encoding="utf-8")
    result = run("summary", "add", str(bad), str(good), code=1)
    errors = result.stderr.splitlines()
    assert f"Error: {bad}:12: citation.year:" in errors[0]
    assert any(e.startswith(f"Error: {bad}:21: topics[1]: unknown topic 'alliance'; did you mean: "
                            "alliance-and-therapeutic-relationship") for e in errors)
    assert result.stdout.startswith("added 2026-10 #1:")
    assert len(json.loads(run("summary", "list", "--json").stdout)) == 1


def test_assemble_warns_with_one_summary_and_refuses_none(run) -> None:  # type: ignore[no-untyped-def]
    result = run("edition", "assemble", "2026-11", code=1)
    assert "no ready summaries for 2026-11" in result.stderr
    run("summary", "add", str(EXAMPLES / "2026-10-alliance-meta-analysis.md"))
    result = run("edition", "assemble", "2026-10")
    assert "Warning: 2026-10 has 1 ready summaries; editions usually have 2 or 3" in result.stderr
    assert "Subject" not in result.stdout


def test_preview_writes_what_that_subscriber_would_receive(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    load_examples(run)
    out = tmp_path / "p" / "feedback.html"
    run("edition", "preview", "2026-10", "--topics", "feedback-and-progress-monitoring",
        "--out", str(out))
    tree = lxml_html.fromstring(out.read_text(encoding="utf-8"))
    assert [" ".join(h.text_content().split()) for h in tree.iter("h2")] == [
        "Does Progress Feedback Help Clients Who Are Not on Track in Routine Care?"]
    message = message_from_bytes(out.with_suffix(".eml").read_bytes(), policy=policy.default)
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert text.replace("\r\n", "\n") == out.with_suffix(".txt").read_text(encoding="utf-8")
    result = run("edition", "preview", "2026-10", "--topics", "nonsense", code=1)
    assert "unknown topic(s) nonsense" in result.stderr
    result = run("edition", "preview", "2026-10", "--topics", "empathy")
    assert result.stdout == "A subscriber of these topics receives nothing this month.\n"


def test_csv_import_reports_bad_rows_keeps_good_ones_and_is_idempotent(
        run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    csv_file = tmp_path / "members.csv"
    csv_file.write_text("email,name,topics\n"
                        "ada@example.org,Ada,all\n"
                        "not-an-address,Nobody,\n"
                        "bob@example.org,Bob,empathy;training\n"
                        "cy@example.org,Cy,empaty\n", encoding="utf-8")
    result = run("subscribers", "import", str(csv_file), code=1)
    assert f"{csv_file}:3: email:" in result.stderr
    assert f"{csv_file}:5: topics:" in result.stderr and "empathy" in result.stderr
    assert result.stdout.splitlines()[0] == (
        f"{csv_file}: 2 added, 0 updated, 0 unchanged, 2 invalid rows skipped")
    again = run("subscribers", "import", str(csv_file), code=1)
    assert again.stdout.splitlines()[0] == (
        f"{csv_file}: 0 added, 0 updated, 2 unchanged, 2 invalid rows skipped")
    listed = json.loads(run("subscribers", "list", "--json").stdout)
    assert [(s["email"], s["topics"], s["consent_method"]) for s in listed] == [
        ("ada@example.org", None, "import"), ("bob@example.org", ["empathy", "training"], "import")]


def test_export_round_trips_through_import(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run("subscribers", "add", "ada@EXAMPLE.org", "--name", "=HYPERLINK(1)", "--topics", "empathy")
    out = tmp_path / "export.csv"
    run("subscribers", "export", "--out", str(out))
    assert out.read_text(encoding="utf-8").splitlines()[1].startswith(
        "ada@example.org,'=HYPERLINK(1),empathy,active")
    result = run("subscribers", "import", str(out))
    assert "0 added, 0 updated, 1 unchanged" in result.stdout


def test_add_refuses_bad_address_and_unknown_topic(run) -> None:  # type: ignore[no-untyped-def]
    assert "email:" in run("subscribers", "add", "nope", code=1).stderr
    assert "unknown topic(s) empaty" in run("subscribers", "add", "a@example.org", "--topics",
                                            "empaty", code=1).stderr


def test_dry_run_send_and_status(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    load_examples(run)
    run("subscribers", "add", "all@example.org")
    run("subscribers", "add", "fb@example.org", "--topics", "feedback-and-progress-monitoring")
    run("subscribers", "add", "none@example.org", "--topics", "empathy")
    dry = run("send", "2026-10", "--dry-run").stdout.splitlines()
    assert dry[0] == "2026-10: 2 recipients, 1 without a matching topic (skipped), 2 variants"
    assert not (tmp_path / "outbox").exists()
    sent = run("send", "2026-10").stdout
    assert sent.startswith("2026-10: sent 2, skipped 1 (no matching topic), failed 0, rejected 0")
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 2
    assert run("send", "2026-10").stdout.startswith("2026-10: sent 0,")
    status = json.loads(run("status", "2026-10", "--json").stdout)
    assert status["edition_status"] == "sent"
    assert status["counts"]["sent"] == 2
    assert sorted(d["email"] for d in status["deliveries"]) == ["all@example.org", "fb@example.org"]


def test_send_without_secret_is_a_configuration_error(run) -> None:  # type: ignore[no-untyped-def]
    load_examples(run)
    run("subscribers", "add", "all@example.org")
    result = run("send", "2026-10", code=2, NEWSLETTER_SECRET_KEY="")
    assert result.stderr.startswith("Configuration error: NEWSLETTER_SECRET_KEY is not set")
    status = json.loads(run("status", "2026-10", "--json").output)
    assert status["counts"]["pending"] == 0 and status["counts"]["failed"] == 0


def test_commands_refuse_an_uninitialised_store(run_cli: RunCli) -> None:
    result = run_cli("summary", "list", code=1)
    assert "is empty: run `newsletter init` first" in result.stderr
