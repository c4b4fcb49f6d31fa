"""Support for the console's browser tests: the app on a real threaded WSGI server, a scheduler
process, a seeded store (taxonomy, subscribers with varied topics, a summary, an edition, a send),
every console GET page with its arguments filled from what was seeded, and axe-core."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select

from newsletter.content.models import Summary
from newsletter.content.store import assemble_edition, upsert_summary
from newsletter.context import Newsletter
from newsletter.editors.models import Editor, EditorSession
from newsletter.taxonomy import default_topics
from subscribers.models import ConsentMethod, Subscriber
from subscribers.store import add_subscriber

from .builders import SUMMARIES
from .conftest import REPO, TEST_SECRET
from .email_support import scrolls_sideways, serious  # noqa: F401  (the console tests' axe)

TOPICS = default_topics()


# --- a seeded store ------------------------------------------------------------------------------

def audience(count: int = 30) -> list[tuple[str, str, frozenset[str] | None]]:
    """`count` confirmed readers with varied topics: every third follows everything, the others
    one to three topics spread over the taxonomy (so some variants share, some get nothing)."""
    people: list[tuple[str, str, frozenset[str] | None]] = []
    for n in range(count):
        if n % 3 == 0:
            topics: frozenset[str] | None = None
        else:
            picks = {TOPICS[(n * 7) % len(TOPICS)].slug}
            if n % 2:
                picks.add(TOPICS[(n * 5 + 1) % len(TOPICS)].slug)
            if n % 5 == 1:
                picks.add(TOPICS[(n * 11 + 3) % len(TOPICS)].slug)
            topics = frozenset(picks)
        people.append((f"Reader {n:02d}", f"reader{n:02d}@clinic.example", topics))
    return people


def seed_audience(nl: Newsletter, people: list[tuple[str, str, frozenset[str] | None]]) -> None:
    with nl.session() as session:
        for name, email, topics in people:
            add_subscriber(session, email, name=name, topics=topics, method=ConsentMethod.ADMIN,
                           source="journey test")


@dataclass(frozen=True)
class Seeded:
    month: str
    summary_id: int
    subscriber_id: int
    editor_id: int
    session_id: int | None
    secrets: tuple[str, ...]
    """Text that only a signed-in editor should ever see (addresses, headlines)."""


def seed_console(nl: Newsletter, month: str = "2015-01", *, editor_email: str) -> Seeded:
    """A summary (two revisions), the month's edition and a subscriber, for pages that take ids."""
    with nl.session() as session:
        first = upsert_summary(session, replace(SUMMARIES[0], month=month), who=editor_email)
        upsert_summary(session, replace(SUMMARIES[0], month=month, body_md="A second revision."),
                       into=first.summary, who=editor_email)
        upsert_summary(session, replace(SUMMARIES[2], month=month), who=editor_email)
        assemble_edition(session, month)
        reader = add_subscriber(session, "secret.reader@clinic.example", name="Seeded Reader",
                                topics=frozenset({"empathy"}), method=ConsentMethod.ADMIN,
                                source="seed")
        summary_id = first.summary.id
        editor = session.scalar(select(Editor).where(Editor.email == editor_email))
        assert editor is not None
        session_id = session.scalar(select(EditorSession.id).order_by(EditorSession.id.desc()))
        return Seeded(month, summary_id, reader.id, editor.id, session_id,
                      ("secret.reader@clinic.example", "Seeded Reader", SUMMARIES[0].headline))


def first_summary_id(nl: Newsletter) -> int:
    with nl.session() as session:
        found = session.scalar(select(Summary.id).order_by(Summary.id))
        assert found is not None
        return found


def first_subscriber_id(nl: Newsletter) -> int:
    with nl.session() as session:
        found = session.scalar(select(Subscriber.id).order_by(Subscriber.id))
        assert found is not None
        return found


# --- every console page --------------------------------------------------------------------------

ARGUMENT = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


def fill_rule(rule: str, values: dict[str, str]) -> str | None:
    """The rule's URL with each argument from `values` (by name); None if one is not known."""
    missing: list[str] = []

    def one(found: re.Match[str]) -> str:
        name = found.group(2)
        if name not in values:
            missing.append(name)
            return ""
        return values[name]

    url = ARGUMENT.sub(one, rule)
    return None if missing else url


def console_get_pages(app: Flask, values: dict[str, str]) -> tuple[list[tuple[str, str]], list[str]]:
    """([(endpoint, url)] of every /admin GET rule filled from `values`, [rules it could not fill])."""
    pages, unfilled = [], []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith("/admin") or "GET" not in (rule.methods or ()):
            continue
        url = fill_rule(rule.rule, values)
        if url is None:
            unfilled.append(rule.rule)
        else:
            pages.append((rule.endpoint, url))
    return pages, unfilled


def values_for(seeded: Seeded) -> dict[str, str]:
    """URL argument names the console uses, with the seeded ids."""
    return {"month": seeded.month, "summary_id": str(seeded.summary_id),
            "subscriber_id": str(seeded.subscriber_id), "editor_id": str(seeded.editor_id),
            "session_id": str(seeded.session_id or 1), "verb": "cancel", "number": "1"}


# --- axe-core and the phone width ----------------------------------------------------------------

OVERFLOWING = """() => {
  const width = document.documentElement.clientWidth, found = [];
  for (const el of document.querySelectorAll('body *')) {
    const box = el.getBoundingClientRect();
    if (box.right > width + 1 && !found.some(f => f.contains(el))) {
      let inScroller = false;
      for (let p = el.parentElement; p; p = p.parentElement) {
        const s = getComputedStyle(p).overflowX;
        if (s === 'auto' || s === 'scroll' || s === 'hidden') { inScroller = true; break; }
      }
      if (!inScroller) found.push(el);
    }
  }
  return found.slice(0, 3).map(el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
    + (el.className && typeof el.className === 'string' ? '.' + el.className.split(' ').join('.') : '')
    + ' (right edge ' + Math.round(el.getBoundingClientRect().right) + ' px)');
}"""


def sideways(page: Any) -> str | None:
    """None, or what makes the page scroll sideways: the outermost elements past the right edge."""
    if not scrolls_sideways(page):
        return None
    return "scrolls sideways: " + ", ".join(page.evaluate(OVERFLOWING))


# --- a scheduler process -------------------------------------------------------------------------

def start_scheduler(nl: Newsletter, log: Path, **settings: str) -> subprocess.Popen[bytes]:
    """`newsletter scheduler --poll 1` on `nl`'s store and SMTP server; `settings` are more
    NEWSLETTER_* values (e.g. rate_limit="2")."""
    c = nl.config
    env = {**os.environ, "NEWSLETTER_CONFIG": "/nonexistent.toml",
           "NEWSLETTER_DATABASE_URL": c.database_url, "NEWSLETTER_SECRET_KEY": TEST_SECRET,
           "NEWSLETTER_BASE_URL": c.base_url, "NEWSLETTER_FROM": c.from_,
           "NEWSLETTER_SMTP_HOST": c.smtp_host, "NEWSLETTER_SMTP_PORT": str(c.smtp_port),
           "NEWSLETTER_SMTP_SECURITY": "none", "NEWSLETTER_TIMEZONE": c.timezone,
           "NEWSLETTER_CROSSREF_URL": c.crossref_url, "PYTHONPATH": str(REPO),
           **{f"NEWSLETTER_{k.upper()}": v for k, v in settings.items()}}
    code = ("import newsletter.cli.schedule; from newsletter.cli import cli; "
            "cli(['scheduler', '--poll', '1'], prog_name='newsletter')")
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-c", code], env=env, cwd=REPO, stdout=out,
                                stderr=subprocess.STDOUT)
