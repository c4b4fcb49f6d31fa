"""Helpers of the bounce tests: a real send over SMTP with VERP on, and the reports that come back
for it, made from the fixtures in tests/fixtures/bounces (among them a copy of the real Postfix DSN of
../shared/fixtures/mail) by putting the real tag, recipient and Message-ID where the example ones
are."""

from __future__ import annotations

import json
import mailbox
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from sqlalchemy import select, text

from newsletter.catcher import SMTPCatcher
from newsletter.cli import cli
from newsletter.context import Newsletter
from newsletter.sending.engine import Sender
from newsletter.sending.models import Delivery
from newsletter.transports import make_transport
from subscribers.models import Subscriber

from .builders import MONTH, load_month
from .conftest import REPO, RunCli

FIXTURES = Path(__file__).parent / "fixtures" / "bounces"
POSTFIX_DSN = REPO / "tests" / "fixtures" / "bounces" / "postfix-dsn-hard-550.eml"
BOUNCE_ADDRESS = "bounce@pprnet.example"
EXAMPLE_TAG = b"bounce+TAG@pprnet.example"


@dataclass(frozen=True)
class Sent:
    """One message the SMTP server received, and the ledger row it was for."""

    delivery_id: int
    email: str
    mail_from: str
    message_id: str


def send_month(nl: Newsletter, server: SMTPCatcher) -> dict[str, Sent]:
    """The sample month sent over SMTP to `server`; what each recipient got, by address."""
    load_month(nl)
    transport = make_transport(nl.config)
    try:
        Sender(nl, transport).send(MONTH)
    finally:
        transport.close()
    with nl.session() as session:
        ids = dict(session.execute(select(Subscriber.email, Delivery.id)
                                   .join(Delivery, Delivery.subscriber_id == Subscriber.id)).all())
    sent = {}
    for item in server.messages:
        (rcpt,) = item.recipients
        sent[rcpt] = Sent(ids[rcpt], rcpt, item.mail_from, str(item.parse()["Message-ID"]))
    return sent


def report(name: str, sent: Sent, *, recipient: str | None = None, tag_of: Sent | None = None,
           message_id: str | None = None) -> bytes:
    """Fixture `name` as it would come back for `sent` (optionally naming another recipient,
    carrying another delivery's tag, or another Message-ID)."""
    data = (FIXTURES / name).read_bytes()
    return (data.replace(EXAMPLE_TAG, (tag_of or sent).mail_from.encode())
            .replace(b"RECIPIENT", (recipient or sent.email).encode())
            .replace(b"MESSAGE_ID", (message_id or sent.message_id).encode()))


def postfix_dsn(sent: Sent, *, recipient: str | None = None) -> bytes:
    """The real Postfix 3.7 DSN, its example tag, recipient and Message-ID replaced by ours."""
    data = POSTFIX_DSN.read_bytes()
    return (data.replace(b"bounce+d4242-k7q2m@news.example.org", sent.mail_from.encode())
            .replace(b"gone@bounce.test", (recipient or sent.email).encode())
            .replace(b"<ed-2026-12.d4242@news.example.org>", sent.message_id.encode()))


def make_maildir(path: Path, messages: list[bytes]) -> Path:
    box = mailbox.Maildir(path, create=True)
    for data in messages:
        box.add(data)
    box.close()
    return path


def cur_flags(path: Path) -> list[str]:
    """The info flags of each message in a Maildir's cur/, sorted."""
    return sorted(p.name.rpartition(":2,")[2] for p in (path / "cur").iterdir())


def show(run_cli: RunCli, email: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        run_cli("subscribers", "show", email, "--json").output)
    return document


def status_of(run_cli: RunCli, email: str) -> tuple[str, str | None]:
    """(status, suppression reason) as `subscribers show --json` tells them."""
    record = show(run_cli, email)
    suppression = record["suppression"]
    return record["subscriber"]["status"], suppression["reason"] if suppression else None


def ingest(run_cli: RunCli, *args: str, data: bytes | None = None, code: int | None = 0,
           as_json: bool = True) -> tuple[dict[str, Any], Result]:
    """`bounces ingest ARGS --json` and its summary; with `data`, piped on standard input as an
    MTA would."""
    env = {**run_cli.env, "NEWSLETTER_BOUNCE_ADDRESS": BOUNCE_ADDRESS}
    with run_cli.monkeypatch.context() as patch:
        patch.chdir(run_cli.cwd)
        result = CliRunner().invoke(cli, ["bounces", "ingest", *args] + ["--json"] * as_json,
                                    env=env, input=data, catch_exceptions=False)
    assert code is None or result.exit_code == code, result.output
    return (json.loads(result.stdout) if as_json else {}), result


@contextmanager
def refusing_feedback_events(nl: Newsletter) -> Iterator[None]:
    """The store really fails: a trigger refuses every new row of feedback_events."""
    postgres = nl.engine.dialect.name == "postgresql"
    create = (["CREATE FUNCTION refuse_event() RETURNS trigger AS $$ BEGIN "
               "RAISE EXCEPTION 'disk quota exceeded'; END $$ LANGUAGE plpgsql",
               "CREATE TRIGGER refuse BEFORE INSERT ON feedback_events "
               "FOR EACH ROW EXECUTE FUNCTION refuse_event()"] if postgres else
              ["CREATE TRIGGER refuse BEFORE INSERT ON feedback_events "
               "BEGIN SELECT RAISE(ABORT, 'disk quota exceeded'); END"])
    drop = (["DROP TRIGGER refuse ON feedback_events", "DROP FUNCTION refuse_event()"]
            if postgres else ["DROP TRIGGER refuse"])
    with nl.engine.begin() as connection:
        for statement in create:
            connection.execute(text(statement))
    try:
        yield
    finally:
        with nl.engine.begin() as connection:
            for statement in drop:
                connection.execute(text(statement))
