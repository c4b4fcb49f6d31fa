"""Every kind of email the product sends, built by the real code paths and read back from the bytes.

Shared by the email browser, accessibility and SpamAssassin tests: the transactional mails come from
`subscribers.mailer.Mailer.build`, the editor's note from `Notifier.build`, the editions from the
`Renderer` and `compose_message` a send uses; every message is parsed with `email.policy.default`.
"""

from __future__ import annotations

import email
import email.policy
import html as htmllib
import os
import re
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from newsletter.config import Config
from newsletter.content.assemble import for_variant
from newsletter.content.variants import variant_key
from newsletter.domain import Branding, EditionContent, Named
from newsletter.mail.compose import Recipient, compose_message, template_for
from newsletter.mail.links import LinkMaker
from newsletter.mail.render import Renderer
from newsletter.notify.notifier import Notifier
from newsletter.taxonomy import default_topics
from subscribers.mailer import Mail, Mailer, MailKind

from .conftest import make_config
from .test_render import load_edition

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
AXE = Path(__file__).parent / "assets" / "axe-core" / "axe.min.js"
WIDTHS = (320, 375, 414, 600)
BRANDING = Branding("Psychotherapy Practice Research Network (PPRNet)", "Ottawa, Ontario, Canada",
                    "https://digest.example.org", "PPRNet Research Digest")
LONG_NAME = "Dr. Marie-Ève Tremblay-Desjardins"
LONG_EMAIL = "marie-eve.tremblay-desjardins.clinique@psychotherapie-outaouais.example.ca"

needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                    reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")


def config(**overrides: object) -> Config:
    return make_config("sqlite:///:memory:", **overrides)


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def part(message: EmailMessage, subtype: str) -> str:
    body = message.get_body(preferencelist=(subtype,))
    assert body is not None and body.get_content_type() == f"text/{subtype}", subtype
    return str(body.get_content())


def longest_topic_edition(language: str = "en") -> EmailMessage:
    """The golden edition with every summary carrying the taxonomy's three longest topic names."""
    names = sorted((t.name for t in default_topics()), key=len, reverse=True)[:3]
    topics = tuple(Named(f"long-{i}", name) for i, name in enumerate(names))
    edition = load_edition()
    edition = replace(edition, items=tuple(replace(item, topics=topics) for item in edition.items))
    return edition_message(edition, language)


def edition_message(edition: EditionContent, language: str = "en") -> EmailMessage:
    c = config()
    ids = tuple(item.id for item in edition.items)
    rendered = Renderer(BRANDING).render_variant(for_variant(edition, ids, language), ids, language)
    template = template_for(c, rendered, variant_key(ids, language))
    message = compose_message(
        template, Recipient("uid-1", LONG_EMAIL, LONG_NAME, ", ".join(
            t.name for t in edition.items[0].topics)),
        LinkMaker.for_config(c), date=datetime.now(UTC), message_id_prefix="t", delivery_id=1,
        envelope_from="digest@pprnet.example")
    return parse(message.data)


def transactional(kind: MailKind, language: str = "en") -> EmailMessage:
    c = config()
    context: dict[str, object] = {}
    if kind is MailKind.CONFIRM:
        token = "eyJzIjoiYWRhQGV4YW1wbGUub3JnIiwidCI6WyJhbGxpYW5jZSJdfQ.Z2l2ZW4gYSBsb25nIHNpZ25hdHVyZQ." * 2
        context = {"confirm_url": f"https://digest.example.org/confirm/{token}", "expiry_days": 7}
    elif kind is MailKind.WELCOME:
        context = {"archive_url": "https://digest.example.org/archive/2015-01"}
    mail = Mail(kind, "uid-1", LONG_EMAIL, LONG_NAME, "all topics", context, language)
    return parse(Mailer(c, BRANDING).build(mail).data)


def editor_note() -> EmailMessage:
    c = config(editor_email="editor@pprnet.example")
    body = ("Sent: 1204\nFailed (will be retried): 3\nRejected: 1\n  3 x 421 4.7.0 Try again later, "
            "closing connection (https://support.example.com/mail/answer/7720)")
    return parse(Notifier(c).build("2015-01: send needs attention", body).data)


def every_email(language: str = "en") -> dict[str, EmailMessage]:
    """name → parsed message, for each kind of email the product sends (the editor's note is
    English whatever `language`: it goes to the editor)."""
    return {"confirm": transactional(MailKind.CONFIRM, language),
            "welcome": transactional(MailKind.WELCOME, language),
            "manage": transactional(MailKind.MANAGE, language), "editor-note": editor_note(),
            "edition": edition_message(load_edition(), language),
            "edition-long-topics": longest_topic_edition(language)}


def viewable_html(message: EmailMessage) -> str:
    """The HTML part, or a plain-text-only message the way Chromium shows text/plain (its own
    viewer's <pre> style: wrapped, long words broken)."""
    body = message.get_body(preferencelist=("html", "plain"))
    assert body is not None
    if body.get_content_type() == "text/html":
        return str(body.get_content())
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta name=\"viewport\" "
            "content=\"width=device-width\"><title>note</title></head><body><main>"
            "<pre style=\"word-wrap: break-word; white-space: pre-wrap\">"
            + htmllib.escape(str(body.get_content())) + "</pre></main></body></html>")


def without_style(page: str) -> str:
    """What Gmail's apps with non-Google accounts show: the <style> block gone, inline styles kept."""
    return re.sub(r"<style\b[^>]*>.*?</style>", "", page, flags=re.S | re.I)


def scroll_width(page: Page, html: str) -> int:
    page.set_content(html, wait_until="load")
    return int(page.evaluate("document.documentElement.scrollWidth"))


def serious(page: Page) -> list[tuple[str, str, list[object]]]:
    """axe-core's serious and critical violations on the page as it is: (rule, impact, the first
    three targets)."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


def scrolls_sideways(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth > "
                              "document.documentElement.clientWidth"))


def axe_violations(page: Page, html: str) -> list[dict[str, object]]:
    """axe-core's serious and critical violations of the page, as `(id, impact, nodes)` dicts."""
    page.set_content(html, wait_until="load")
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [{"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


def mobile_context(browser: Browser, width: int, scheme: str) -> BrowserContext:
    """Chromium's mobile emulation: a phone viewport that honours <meta viewport>, touch, 2x."""
    mobile = width < 600
    return browser.new_context(viewport={"width": width, "height": 800}, is_mobile=mobile,
                               has_touch=mobile, device_scale_factor=2 if mobile else 1,
                               color_scheme=scheme)  # type: ignore[arg-type]
