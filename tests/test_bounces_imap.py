"""`bounces ingest --imap` against a real IMAP server: Debian's Dovecot, started for the test on a
loopback port with a passwd-file and a self-signed certificate, over IMAPS and STARTTLS."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from imapclient import FLAGGED, SEEN, IMAPClient

from newsletter.bounces import MAX_MESSAGE_BYTES
from newsletter.bounces.imap import ImapSettings, connect
from newsletter.catcher import SMTPCatcher, free_port
from newsletter.errors import ConfigError

from .bounces_support import BOUNCE_ADDRESS, Sent, ingest, postfix_dsn, report, send_month, status_of
from .conftest import MakeNewsletter, RunCli

pytestmark = [pytest.mark.process,
              pytest.mark.skipif(shutil.which("dovecot", path="/usr/sbin:/usr/bin") is None,
                                 reason="needs Debian's dovecot-imapd")]

USER, PASSWORD = "bounces", "imap-test-" + os.urandom(6).hex()
NOBODY = 65534
CONFIG = """\
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
auth_mechanisms = plain
disable_plaintext_auth = yes
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={uid} home={d}/home/%u
}}
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Processed {{
    auto = create
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps}
    ssl = yes
  }}
}}
"""


@dataclass(frozen=True)
class Dovecot:
    imap: int
    imaps: int
    ca_file: Path

    def client(self) -> IMAPClient:
        client = IMAPClient("127.0.0.1", port=self.imaps, ssl=True, ssl_context=ssl.create_default_context(
            cafile=str(self.ca_file)), timeout=10)
        client.login(USER, PASSWORD)
        return client


def _wait_for(port: int, log: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dovecot exited: {log.read_text() if log.exists() else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("dovecot did not listen in 15 s")


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    """Dovecot's own processes drop to its users, so its folder is outside pytest's 0700 tree."""
    folder = Path(tempfile.mkdtemp(prefix="bounces-dovecot-"))
    folder.chmod(0o755)
    try:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=localhost", "-addext",
                        "subjectAltName=IP:127.0.0.1,DNS:localhost",
                        "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem")],
                       check=True, capture_output=True)
        (folder / "passwd").write_text(f"{USER}:{PASSWORD}\n")
        (folder / "home" / USER).mkdir(parents=True)
        uid = NOBODY if os.geteuid() == 0 else os.geteuid()
        if os.geteuid() == 0:
            os.chown(folder / "home" / USER, NOBODY, NOBODY)
        ports = free_port(), free_port()
        conf = folder / "dovecot.conf"
        conf.write_text(CONFIG.format(d=folder, uid=uid, imap=ports[0], imaps=ports[1]))
        process = subprocess.Popen(["dovecot", "-F", "-c", str(conf)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        try:
            _wait_for(ports[1], folder / "dovecot.log", process)
            yield Dovecot(ports[0], ports[1], folder / "cert.pem")
        finally:
            process.terminate()
            process.wait(10)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def sent(make_newsletter: MakeNewsletter, smtp_server: SMTPCatcher) -> dict[str, Sent]:
    return send_month(make_newsletter(bounce_address=BOUNCE_ADDRESS), smtp_server)


def imap_args(server: Dovecot, *more: str) -> list[str]:
    return ["--imap", "127.0.0.1", "--port", str(server.imaps), "--user", USER,
            "--ca-file", str(server.ca_file), *more]


def test_reports_in_an_imap_inbox_are_recorded_and_moved(dovecot: Dovecot, sent: dict[str, Sent],
                                                         run_cli: RunCli) -> None:
    with dovecot.client() as client:
        client.append("INBOX", postfix_dsn(sent["ada@example.org"]))
        client.append("INBOX", report("arf-yahoo-abuse.crlf.eml", sent["bob@example.org"]))
        client.append("INBOX", report("autoreply-exchange-oof.eml", sent["cy@example.org"]))
        client.append("INBOX", b"Subject: huge\r\n\r\n" + b"x" * MAX_MESSAGE_BYTES)
    run_cli.env["BOUNCES_IMAP_PASSWORD"] = PASSWORD
    summary, _ = ingest(run_cli, *imap_args(dovecot, "--move-to", "Processed"))
    assert {k: summary[k] for k in ("processed", "hard", "complaints", "ignored", "refused")} == \
        {"processed": 4, "hard": 1, "complaints": 1, "ignored": 1, "refused": 1}
    assert summary["notes"][0].startswith(f"imap 127.0.0.1 INBOX uid 4: {MAX_MESSAGE_BYTES + 17:,}"
                                          " bytes, over the")
    assert status_of(run_cli, "ada@example.org") == ("bounced", "hard-bounce")
    assert status_of(run_cli, "bob@example.org") == ("complained", "complaint")
    assert status_of(run_cli, "cy@example.org") == ("active", None)
    with dovecot.client() as client:
        client.select_folder("INBOX")
        left = client.fetch(client.search("ALL"), ["FLAGS"])
        assert [set(v[b"FLAGS"]) for v in left.values()] == [{FLAGGED}]
        client.select_folder("Processed")
        moved = client.fetch(client.search("ALL"), ["FLAGS"])
        assert [SEEN in v[b"FLAGS"] for v in moved.values()] == [True, True, True]
    again, _ = ingest(run_cli, *imap_args(dovecot))
    assert again["processed"] == 0


def test_without_move_to_read_messages_are_flagged_seen_over_starttls(
        dovecot: Dovecot, sent: dict[str, Sent], run_cli: RunCli) -> None:
    with dovecot.client() as client:
        client.append("INBOX", report("postfix-dsn-soft-441.eml", sent["cy@example.org"]))
    run_cli.env["BOUNCES_IMAP_PASSWORD"] = PASSWORD
    summary, _ = ingest(run_cli, "--imap", "127.0.0.1", "--port", str(dovecot.imap),
                        "--security", "starttls", "--user", USER, "--ca-file",
                        str(dovecot.ca_file))
    assert (summary["processed"], summary["soft"]) == (1, 1)
    with dovecot.client() as client:
        client.select_folder("INBOX")
        (flags,) = [v[b"FLAGS"] for v in client.fetch(client.search("ALL"), ["FLAGS"]).values()]
        assert SEEN in flags


def test_a_wrong_password_or_an_untrusted_certificate_is_a_clear_error(
        dovecot: Dovecot, run_cli: RunCli) -> None:
    run_cli("init")
    env = {"BOUNCES_IMAP_PASSWORD": "wrong", "NEWSLETTER_BOUNCE_ADDRESS": BOUNCE_ADDRESS}
    result = run_cli("bounces", "ingest", *imap_args(dovecot), code=1, **env)
    assert f"imap 127.0.0.1:{dovecot.imaps}:" in result.output
    assert "authentication failed" in result.output.lower()
    env["BOUNCES_IMAP_PASSWORD"] = PASSWORD
    result = run_cli("bounces", "ingest", "--imap", "127.0.0.1", "--port", str(dovecot.imaps),
                     "--user", USER, code=1, **env)
    assert "CERTIFICATE_VERIFY_FAILED" in result.output


def test_clear_text_imap_is_refused_off_loopback_and_the_password_is_never_a_flag(
        run_cli: RunCli) -> None:
    with pytest.raises(ConfigError, match="is not a loopback address; the password would travel"):
        connect(ImapSettings(host="192.0.2.1", user=USER, password="x", security="none"))
    run_cli("init")
    result = run_cli("bounces", "ingest", "--imap", "192.0.2.1", "--user", USER, code=2,
                     NEWSLETTER_BOUNCE_ADDRESS=BOUNCE_ADDRESS)
    assert "BOUNCES_IMAP_PASSWORD is not set" in result.output


def test_a_move_to_folder_that_does_not_exist_is_named_before_anything_is_read(
        dovecot: Dovecot, run_cli: RunCli) -> None:
    run_cli("init")
    result = run_cli("bounces", "ingest", *imap_args(dovecot, "--move-to", "Nowhere"), code=1,
                     BOUNCES_IMAP_PASSWORD=PASSWORD, NEWSLETTER_BOUNCE_ADDRESS=BOUNCE_ADDRESS)
    assert "--move-to 'Nowhere': no such folder on the server" in result.output
