"""`bounces ingest` on the reports a real MTA and real mailbox providers send, from a file, a pipe
and a Maildir, checked through `subscribers show --json`; and on what a hostile mailbox holds."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.bounces import MAX_MESSAGE_BYTES, ReportError, ReportKind, read_report
from newsletter.catcher import SMTPCatcher
from newsletter.cli import cli
from newsletter.context import Newsletter
from newsletter.feedback.events import EventKind

from .bounces_support import (
    BOUNCE_ADDRESS,
    POSTFIX_DSN,
    Sent,
    cur_flags,
    ingest,
    make_maildir,
    postfix_dsn,
    refusing_feedback_events,
    report,
    send_month,
    status_of,
)
from .conftest import MakeNewsletter, RunCli

ACTIVE = ("active", None)
NOW = datetime(2026, 12, 10, tzinfo=UTC)
EXAMPLE = Sent(42, "cy@example.org", "bounce+aaaaaaaaaaaaaaaaaaaaaa@pprnet.example",
               "<2015-01.42.0123456789abcdef0123@pprnet.example>")
"""For the tests that only read a report: no store, no send."""


@pytest.fixture
def newsletter_of_sent(make_newsletter: MakeNewsletter) -> Newsletter:
    return make_newsletter(bounce_address=BOUNCE_ADDRESS)


@pytest.fixture
def sent(newsletter_of_sent: Newsletter, smtp_server: SMTPCatcher) -> dict[str, Sent]:
    """The sample month sent with VERP on: ada, bob and cy each got one message."""
    return send_month(newsletter_of_sent, smtp_server)


def test_the_real_postfix_dsn_reads_as_one_hard_bounce() -> None:
    found = read_report(POSTFIX_DSN.read_bytes(), now=NOW)
    assert found.kind is ReportKind.DSN
    assert found.message_id == "<20261201202114.C0455178537@mta.test.example>"
    assert found.tag_addresses == ("bounce+d4242-k7q2m@news.example.org",)
    assert found.returned_message_id == "<ed-2026-12.d4242@news.example.org>"
    (finding,) = found.findings
    assert (finding.kind, finding.address) == (EventKind.BOUNCE_HARD, "gone@bounce.test")
    assert finding.reason == ("5.1.1 smtp; 550 5.1.1 <gone@bounce.test>: Recipient address "
                              "rejected: User unknown in virtual mailbox table")
    assert finding.occurred_at == datetime(2026, 12, 1, 20, 21, 14, tzinfo=UTC)
    assert finding.details["status"] == "5.1.1" and finding.details["action"] == "failed"


def test_the_real_postfix_dsn_as_written_carries_no_tag_of_ours(newsletter_of_sent: Newsletter,
                                                                run_cli: RunCli) -> None:
    summary, _ = ingest(run_cli, str(POSTFIX_DSN))
    assert (summary["processed"], summary["hard"], summary["unmatched"]) == (1, 0, 1)
    assert summary["notes"] == [f"{POSTFIX_DSN}: unmatched: gone@bounce.test: no VERP tag of ours"]


def test_the_real_postfix_dsn_bounces_its_delivery_from_a_file(sent: dict[str, Sent],
                                                               run_cli: RunCli,
                                                               tmp_path: Path) -> None:
    path = tmp_path / "dsn.eml"
    path.write_bytes(postfix_dsn(sent["ada@example.org"]))
    summary, result = ingest(run_cli, str(path))
    assert (summary["processed"], summary["hard"], summary["unmatched"]) == (1, 1, 0)
    assert status_of(run_cli, "ada@example.org") == ("bounced", "hard-bounce")
    assert status_of(run_cli, "bob@example.org") == ACTIVE
    again, _ = ingest(run_cli, str(path))
    assert (again["hard"], again["duplicates"]) == (1, 1)


def test_the_real_postfix_dsn_bounces_its_delivery_from_a_maildir(sent: dict[str, Sent],
                                                                  run_cli: RunCli,
                                                                  tmp_path: Path) -> None:
    box = make_maildir(tmp_path / "Maildir", [postfix_dsn(sent["cy@example.org"]),
                                              report("autoreply-sieve-vacation.eml",
                                                     sent["bob@example.org"])])
    summary, _ = ingest(run_cli, "--maildir", str(box))
    assert (summary["processed"], summary["hard"], summary["ignored"]) == (2, 1, 1)
    assert status_of(run_cli, "cy@example.org") == ("bounced", "hard-bounce")
    assert status_of(run_cli, "bob@example.org") == ACTIVE
    assert list((box / "new").iterdir()) == [] and cur_flags(box) == ["S", "S"]
    again, _ = ingest(run_cli, "--maildir", str(box))
    assert again["processed"] == 0


def test_a_maildir_done_folder_receives_what_was_read(sent: dict[str, Sent], run_cli: RunCli,
                                                      tmp_path: Path) -> None:
    box = make_maildir(tmp_path / "Maildir", [postfix_dsn(sent["cy@example.org"])])
    summary, _ = ingest(run_cli, "--maildir", str(box), "--done-folder", "Done")
    assert summary["hard"] == 1
    assert list((box / "cur").iterdir()) == [] and cur_flags(box / ".Done") == ["S"]


def test_a_soft_bounce_is_counted_and_does_not_suppress(sent: dict[str, Sent],
                                                        run_cli: RunCli) -> None:
    summary, _ = ingest(run_cli, "-", data=report("postfix-dsn-soft-441.eml",
                                                  sent["bob@example.org"]))
    assert (summary["soft"], summary["hard"], summary["unmatched"]) == (1, 0, 0)
    assert status_of(run_cli, "bob@example.org") == ACTIVE


def test_a_delay_warning_is_deferred_and_changes_nothing(sent: dict[str, Sent],
                                                        run_cli: RunCli) -> None:
    summary, _ = ingest(run_cli, "-", data=report("postfix-dsn-delayed.eml",
                                                  sent["bob@example.org"]))
    assert (summary["deferred"], summary["soft"], summary["hard"]) == (1, 0, 0)
    assert status_of(run_cli, "bob@example.org") == ACTIVE


@pytest.mark.parametrize("fixture", ["arf-yahoo-abuse.crlf.eml", "arf-microsoft-jmrp.eml"])
def test_an_arf_abuse_report_is_a_complaint(fixture: str, sent: dict[str, Sent], run_cli: RunCli,
                                            tmp_path: Path) -> None:
    box = make_maildir(tmp_path / "Maildir", [report(fixture, sent["ada@example.org"])])
    summary, _ = ingest(run_cli, "--maildir", str(box))
    assert (summary["complaints"], summary["unmatched"]) == (1, 0), summary
    assert status_of(run_cli, "ada@example.org") == ("complained", "complaint")
    assert status_of(run_cli, "bob@example.org") == ACTIVE


@pytest.mark.parametrize("fixture", ["autoreply-sieve-vacation.eml", "autoreply-exchange-oof.eml"])
def test_auto_replies_are_ignored(fixture: str, sent: dict[str, Sent], run_cli: RunCli) -> None:
    summary, _ = ingest(run_cli, "-", data=report(fixture, sent["ada@example.org"]))
    assert (summary["processed"], summary["ignored"], summary["hard"]) == (1, 1, 0)
    assert status_of(run_cli, "ada@example.org") == ACTIVE


def test_a_non_standard_bounce_is_read_by_flufl_bounce(sent: dict[str, Sent],
                                                       run_cli: RunCli) -> None:
    summary, _ = ingest(run_cli, "-", data=report("qmail-bounce.eml", sent["bob@example.org"]))
    assert summary["hard"] == 1
    assert status_of(run_cli, "bob@example.org") == ("bounced", "hard-bounce")


# --- a hostile mailbox ---------------------------------------------------------------------------

def test_a_tag_for_someone_elses_delivery_changes_nobody(sent: dict[str, Sent],
                                                         run_cli: RunCli) -> None:
    """Bob's own tag on a report naming Ada: Bob could write that; it must not bounce Ada."""
    bob, ada = sent["bob@example.org"], sent["ada@example.org"]
    data = postfix_dsn(bob, recipient=ada.email)
    summary, _ = ingest(run_cli, "-", data=data)
    assert (summary["hard"], summary["unmatched"]) == (0, 1)
    assert summary["notes"] == [f"standard input: unmatched: ada@example.org: not the recipient "
                                f"of delivery {bob.delivery_id}"]
    assert status_of(run_cli, "ada@example.org") == ACTIVE
    assert status_of(run_cli, "bob@example.org") == ACTIVE


def test_a_garbled_tag_and_a_missing_tag_are_unmatched(sent: dict[str, Sent],
                                                       run_cli: RunCli) -> None:
    ada = sent["ada@example.org"]
    local, _, domain = ada.mail_from.partition("@")
    garbled = Sent(ada.delivery_id, ada.email, f"{local[:-3]}zzz@{domain}", ada.message_id)
    untagged = Sent(ada.delivery_id, ada.email, BOUNCE_ADDRESS, ada.message_id)
    for case, why in ((garbled, "the VERP tag does not verify (forged or garbled)"),
                      (untagged, "no VERP tag of ours")):
        summary, _ = ingest(run_cli, "-", data=postfix_dsn(case))
        assert summary["unmatched"] == 1 and summary["notes"][0].endswith(why)
    assert status_of(run_cli, "ada@example.org") == ACTIVE


def test_a_returned_message_id_of_another_delivery_is_unmatched(sent: dict[str, Sent],
                                                                run_cli: RunCli) -> None:
    ada, bob = sent["ada@example.org"], sent["bob@example.org"]
    data = report("postfix-dsn-soft-441.eml", ada, message_id=bob.message_id)
    summary, _ = ingest(run_cli, "-", data=data)
    assert summary["unmatched"] == 1 and summary["soft"] == 0
    assert f"Message-ID is of delivery {bob.delivery_id}" in summary["notes"][0]


def test_a_report_nested_in_a_forwarded_message_is_not_read_as_one(sent: dict[str, Sent],
                                                                   run_cli: RunCli) -> None:
    """A DSN for Ada, forwarded inside a message/rfc822 of a plain mail to Bob's tag."""
    outer = EmailMessage(policy=policy.SMTP)
    outer["From"] = "someone@elsewhere.example"
    outer["To"] = sent["bob@example.org"].mail_from
    outer["Subject"] = "Fwd: Undelivered Mail Returned to Sender"
    outer.set_content("see attached")
    inner = BytesParser(policy=policy.default).parsebytes(postfix_dsn(sent["ada@example.org"]))
    outer.add_attachment(inner)
    summary, _ = ingest(run_cli, "-", data=outer.as_bytes())
    assert summary["hard"] == 0
    assert status_of(run_cli, "ada@example.org") == ACTIVE
    assert status_of(run_cli, "bob@example.org") == ACTIVE


def test_crlf_smuggled_into_report_fields_is_refused_by_field(sent: dict[str, Sent],
                                                              run_cli: RunCli) -> None:
    ada = sent["ada@example.org"]
    data = postfix_dsn(ada).replace(
        b"Final-Recipient: rfc822; ada@example.org",
        b"Final-Recipient: =?utf-8?q?rfc822=3B_ada=40example=2Eorg=0D=0ABcc=3A_x=40evil=2Eexample?=")
    data = data.replace(b"Diagnostic-Code: smtp; 550",
                        b"Diagnostic-Code: =?utf-8?q?smtp=3B_550=0D=0AX-Injected=3A_1?= 550")
    summary, _ = ingest(run_cli, "-", data=data)
    assert (summary["hard"], summary["ignored"]) == (0, 1)
    assert summary["notes"] == ["standard input: recipient block 1: Final-Recipient is not an "
                                "address"]
    assert status_of(run_cli, "ada@example.org") == ACTIVE


def test_crlf_in_a_diagnostic_stays_one_line() -> None:
    found = read_report(postfix_dsn(EXAMPLE).replace(
        b"Diagnostic-Code: smtp; 550",
        b"Diagnostic-Code: =?utf-8?q?smtp=3B_550=0D=0AX-Injected=3A_1?= 550"), now=NOW)
    (finding,) = found.findings
    assert "\r" not in finding.reason and "\n" not in finding.reason
    assert finding.reason.startswith("5.1.1 smtp; 550 X-Injected: 1 550 5.1.1")


def test_wrong_encodings_are_read_without_losing_the_report(sent: dict[str, Sent],
                                                            run_cli: RunCli) -> None:
    """Latin-1 bytes where UTF-8 is declared, in the text and in a report field."""
    cy = sent["cy@example.org"]
    data = postfix_dsn(cy).replace(b"mailbox table\n\n--", b"mailbox table \xe9t\xe9\n\n--")
    data = data.replace(b"The mail system\n", b"Le syst\xe8me de courrier\n")
    summary, _ = ingest(run_cli, "-", data=data)
    assert summary["hard"] == 1
    assert status_of(run_cli, "cy@example.org") == ("bounced", "hard-bounce")


def test_a_base64_encoded_delivery_status_is_read() -> None:
    data = postfix_dsn(EXAMPLE)
    head, rest = data.split(b"Content-Type: message/delivery-status\n\n", 1)
    fields, tail = rest.split(b"\n--B5808178530", 1)
    encoded = base64.encodebytes(fields)
    data = (head + b"Content-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n\n"
            + encoded + b"\n--B5808178530" + tail)
    (finding,) = read_report(data, now=NOW).findings
    assert (finding.kind, finding.address) == (EventKind.BOUNCE_HARD, "cy@example.org")


def test_a_dsn_for_two_recipients_counts_only_the_tagged_one(sent: dict[str, Sent],
                                                             run_cli: RunCli) -> None:
    bob = sent["bob@example.org"]
    second = (b"\nFinal-Recipient: rfc822; stranger@example.net\nAction: failed\nStatus: 5.1.1\n"
              b"Diagnostic-Code: smtp; 550 5.1.1 no such user\n")
    data = postfix_dsn(bob).replace(b"mailbox table\n\n--B5808178530.1796156474/mta.test.example\n"
                                    b"Content-Description: Undelivered",
                                    b"mailbox table\n" + second + b"\n--B5808178530.1796156474/"
                                    b"mta.test.example\nContent-Description: Undelivered")
    summary, _ = ingest(run_cli, "-", data=data)
    assert (summary["hard"], summary["unmatched"]) == (1, 1)
    assert status_of(run_cli, "bob@example.org") == ("bounced", "hard-bounce")


def test_a_message_over_the_cap_is_refused_by_name_and_the_others_are_read(
        sent: dict[str, Sent], run_cli: RunCli, tmp_path: Path) -> None:
    huge = postfix_dsn(sent["bob@example.org"]) + b"x" * MAX_MESSAGE_BYTES
    box = make_maildir(tmp_path / "Maildir", [huge, postfix_dsn(sent["cy@example.org"])])
    summary, _ = ingest(run_cli, "--maildir", str(box))
    assert (summary["processed"], summary["hard"], summary["refused"]) == (2, 1, 1)
    (note,) = summary["notes"]
    assert note.startswith(f"{box} key ") and "over the 4,194,304-byte cap: not read" in note
    assert cur_flags(box) == ["F", "S"]
    assert status_of(run_cli, "bob@example.org") == ACTIVE
    assert status_of(run_cli, "cy@example.org") == ("bounced", "hard-bounce")


def test_a_piped_message_over_the_cap_is_returned_to_the_mta(sent: dict[str, Sent],
                                                             run_cli: RunCli) -> None:
    summary, _ = ingest(run_cli, "-", data=b"x" * (MAX_MESSAGE_BYTES + 1), code=65)
    assert summary["refused"] == 1
    assert "standard input: over the 4,194,304-byte cap" in summary["notes"][0]


def test_when_the_store_fails_the_mta_is_asked_to_keep_the_message(
        sent: dict[str, Sent], run_cli: RunCli, newsletter_of_sent: Newsletter) -> None:
    """A real failure of the real store: a trigger that refuses every new feedback event."""
    data = postfix_dsn(sent["bob@example.org"])
    with refusing_feedback_events(newsletter_of_sent):
        _, result = ingest(run_cli, "-", data=data, code=75, as_json=False)
        assert "standard input: the store failed; nothing of this message was recorded" \
            in result.stderr
        assert status_of(run_cli, "bob@example.org") == ACTIVE
    summary, _ = ingest(run_cli, "-", data=data)
    assert (summary["hard"], summary["duplicates"]) == (1, 0)
    assert status_of(run_cli, "bob@example.org") == ("bounced", "hard-bounce")


@pytest.mark.parametrize("data", [b"", b"\x00\xff" * 500, b"Subject: hello\n\nbuy now"])
def test_mail_that_is_no_report_is_ignored(data: bytes, newsletter_of_sent: Newsletter,
                                           run_cli: RunCli) -> None:
    summary, _ = ingest(run_cli, "-", data=data)
    assert (summary["processed"], summary["ignored"], summary["refused"]) == (1, 1, 0)


def test_a_report_without_a_message_id_is_still_recorded_once(sent: dict[str, Sent],
                                                             run_cli: RunCli) -> None:
    data = postfix_dsn(sent["bob@example.org"]).replace(
        b"Message-Id: <20261201202114.C0455178537@mta.test.example>\n", b"")
    first, _ = ingest(run_cli, "-", data=data)
    second, _ = ingest(run_cli, "-", data=data)
    assert (first["hard"], first["duplicates"], second["duplicates"]) == (1, 0, 1)


def test_exactly_one_source_is_needed(run_cli: RunCli) -> None:
    result = run_cli("bounces", "ingest", code=2)
    assert "give exactly one of FILE (or - for standard input), --maildir, --imap" in result.output
    result = run_cli("bounces", "ingest", "x.eml", "--maildir", "box", code=2)
    assert "got FILE, --maildir" in result.output


def test_without_a_bounce_address_nothing_can_be_matched(run_cli: RunCli) -> None:
    run_cli("init")
    result = run_cli("bounces", "ingest", str(POSTFIX_DSN), code=2)
    assert "NEWSLETTER_BOUNCE_ADDRESS is not set" in result.output


def test_a_folder_that_is_no_maildir_is_named(run_cli: RunCli, tmp_path: Path) -> None:
    run_cli("init")
    result = run_cli("bounces", "ingest", "--maildir", str(tmp_path), code=1,
                     NEWSLETTER_BOUNCE_ADDRESS=BOUNCE_ADDRESS)
    assert f"{tmp_path}: not a Maildir (it needs new/ and cur/)" in result.output


def _nested(depth: int) -> bytes:
    opening = b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (i, i)
                       for i in range(depth))
    return b"From: x@example.net\nSubject: s\n" + opening + b"Content-Type: text/plain\n\nhi\n"


@pytest.mark.parametrize(("data", "message"), [
    (_nested(3000), "3,000 lines start with '--', more MIME parts than a report has"),
    (_nested(30), "multipart/ appears 30 times, nested deeper than a report is"),
    (b"Content-Type: multipart/report; report-type=delivery-status; boundary=B\n\n"
     + b"--B\nContent-Type: text/plain\n\nx\n" * 50_000 + b"--B--\n",
     "50,001 lines start with '--'"),
    (b"".join(b"Delivered-To: bounce+%d@pprnet.example\n" % i for i in range(20_000))
     + b"Subject: x\n\nbody", "20,001 header fields, more than the 1,000"),
])
def test_a_message_built_to_exhaust_the_parser_is_refused_at_once(data: bytes,
                                                                  message: str) -> None:
    """Python's parser is quadratic in parts and recursive in nesting: caps come first."""
    with pytest.raises(ReportError, match=re.escape(message)):
        read_report(data, now=NOW)


def test_a_big_message_without_a_report_part_skips_the_heuristics() -> None:
    text = b"user@example.org: Sorry, no mailbox here by that name. (#5.1.1)\n" * 60_000
    found = read_report(b"From: MAILER-DAEMON@mx.example.net\nSubject: failure notice\n\n"
                        + text[:4_000_000], now=NOW)
    assert (found.kind, found.findings) == (ReportKind.OTHER, ())
    assert "too big to be a non-standard bounce" in found.problems[0]


def test_a_soft_dsn_written_by_a_real_postfix_is_soft(sent: dict[str, Sent], run_cli: RunCli,
                                                      tmp_path: Path) -> None:
    path = tmp_path / "soft.eml"
    path.write_bytes(report("postfix-real-soft-420.eml", sent["ada@example.org"]))
    summary, _ = ingest(run_cli, str(path))
    assert (summary["soft"], summary["hard"], summary["unmatched"]) == (1, 0, 0)
    assert status_of(run_cli, "ada@example.org") == ACTIVE
    (finding,) = read_report(path.read_bytes(), now=NOW).findings
    assert finding.reason == ("4.2.0 smtp; 451 4.2.0 <ada@example.org>: Mailbox temporarily over "
                              "quota, try again later")


def test_a_hard_dsn_written_by_a_real_postfix_bounces_from_a_maildir(
        sent: dict[str, Sent], run_cli: RunCli, tmp_path: Path) -> None:
    box = make_maildir(tmp_path / "Maildir", [report("postfix-real-hard-511.eml",
                                                     sent["cy@example.org"])])
    summary, _ = ingest(run_cli, "--maildir", str(box))
    assert (summary["hard"], summary["unmatched"]) == (1, 0)
    assert status_of(run_cli, "cy@example.org") == ("bounced", "hard-bounce")


def test_a_done_folder_cannot_leave_the_maildir(newsletter_of_sent: Newsletter, run_cli: RunCli,
                                                tmp_path: Path) -> None:
    box = make_maildir(tmp_path / "Maildir", [])
    result = run_cli("bounces", "ingest", "--maildir", str(box), "--done-folder", "../../etc",
                     code=1, NEWSLETTER_BOUNCE_ADDRESS=BOUNCE_ADDRESS)
    assert "--done-folder '../../etc': a Maildir++ folder name is letters" in result.output
    assert {p.name for p in tmp_path.iterdir()} <= {"Maildir", "newsletter.db"}
    assert sorted(p.name for p in box.iterdir()) == ["cur", "new", "tmp"]


@pytest.mark.parametrize("feedback_type", ["not-spam", "fraud", "auth-failure", "virus", "other"])
def test_an_arf_report_of_another_type_is_ignored(feedback_type: str) -> None:
    data = report("arf-yahoo-abuse.crlf.eml", EXAMPLE).replace(
        b"Feedback-Type: abuse", b"Feedback-Type: " + feedback_type.encode())
    (finding,) = read_report(data, now=NOW).findings
    assert finding.kind is EventKind.IGNORED
    assert finding.reason.startswith(f"feedback-type {feedback_type} ")


def test_the_summary_is_one_line_and_each_unmatched_report_is_named(
        sent: dict[str, Sent], run_cli: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "two.eml"
    path.write_bytes(postfix_dsn(sent["bob@example.org"], recipient="stranger@example.net"))
    result = run_cli("bounces", "ingest", str(path), NEWSLETTER_BOUNCE_ADDRESS=BOUNCE_ADDRESS)
    assert result.stdout == ("processed 1: hard 0, soft 0, complaints 0, ignored 0, "
                             "unmatched 1\n")
    assert result.stderr == (f"{path}: unmatched: stranger@example.net: not the recipient of "
                             f"delivery {sent['bob@example.org'].delivery_id}\n")


def test_a_pipe_without_the_bounce_address_asks_the_mta_to_retry(run_cli: RunCli) -> None:
    run_cli("init")
    result = CliRunner().invoke(cli, ["bounces", "ingest", "-"], env=run_cli.env,
                                input=POSTFIX_DSN.read_bytes(), catch_exceptions=False)
    assert result.exit_code == 75
    assert "Configuration error: NEWSLETTER_BOUNCE_ADDRESS is not set" in result.stderr
