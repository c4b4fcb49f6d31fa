"""SpamAssassin (Debian's, local tests only: `spamassassin -L -t`) finds no positive-scoring rule
in a real edition, English and French, or in the transactional emails."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from .email_support import every_email

pytestmark = [pytest.mark.process, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("spamassassin") is None,
                                 reason="no spamassassin (apt-get install spamassassin)")]

RULE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z0-9_]+)\s", re.M)


def spam_rules(message: bytes) -> dict[str, float]:
    """rule → points, from the report `-t` appends ("Content analysis details")."""
    done = subprocess.run(["spamassassin", "-L", "-t"], input=message, capture_output=True,
                          timeout=120, check=True)
    report = done.stdout.decode("utf-8", "replace")
    start = report.find("Content analysis details")
    assert start >= 0, report[-2000:]
    table = report[start:].split("-" * 4, 1)[1]
    return {name: float(points) for points, name in RULE.findall(table)}


@pytest.mark.parametrize("language", ["en", "fr"])
def test_spamassassin_finds_nothing(language: str) -> None:
    emails = every_email(language)
    positive = {}
    for kind in ("edition", "edition-long-topics", "confirm", "welcome", "manage"):
        rules = spam_rules(emails[kind].as_bytes())
        assert "HTML_MESSAGE" in rules, f"{kind}: the report was not read"
        positive.update({f"{kind}: {name}": points for name, points in rules.items() if points > 0})
    assert positive == {}


def test_the_check_can_fail() -> None:
    """The rule the old hidden preheader set off is still seen when a colour hides text."""
    html = ('<html><body style="background-color:#eef1f4"><div style="color:#eef1f4;'
            'font-size:1px">hidden words hidden words hidden words</div><p>Hello there, '
            'this is a newsletter with some text in it.</p></body></html>')
    message = ("From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\nMIME-Version: 1.0\r\n"
               "Content-Type: text/html; charset=utf-8\r\n\r\n" + html + "\r\n").encode()
    assert spam_rules(message).get("HTML_FONT_LOW_CONTRAST", 0) > 0
