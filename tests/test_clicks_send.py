"""Click tracking over a real send: many recipients into aiosmtpd, each message parsed with
`email.policy.default`; still one render per variant, every edition link behind /r/, no reader's
link behind it, the same /r/ links for everyone in a variant, and none at all when tracking is off."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from email.message import EmailMessage
from urllib.parse import urlsplit

import lxml.html

from newsletter.catcher import SMTPCatcher
from newsletter.clicks import click_figures
from newsletter.context import Newsletter
from newsletter.domain import EditionContent
from newsletter.mail.clicks import ClickLinks, summary_links
from newsletter.mail.compose import make_renderer
from newsletter.mail.render import RenderedVariant
from newsletter.sending.engine import Sender
from newsletter.tokens import Purpose, TokenSigner
from newsletter.transports import make_transport

from .builders import AUDIENCE, MONTH, SUMMARIES, load_month
from .conftest import TEST_SECRET, MakeNewsletter, RunCli
from .live_site import live_site

BASE = "https://digest.example.org"
CHOICES = [topics for _, _, topics in AUDIENCE]
MANY = tuple((f"Reader {n}", f"reader{n}@example.org", CHOICES[n % len(CHOICES)]) for n in range(48))
"""48 readers over the sample audience's four choices: three of them match, in three variants."""


def send_to_many(nl: Newsletter) -> int:
    """Send to MANY; the number of variants rendered, counted at the renderer itself (and
    checked against the send report's own count)."""
    load_month(nl, MANY)
    renderer = make_renderer(nl)
    renders = 0
    render_variant = renderer.render_variant

    def counted(edition: EditionContent, ids: tuple[int, ...], *more: str) -> RenderedVariant:
        nonlocal renders
        renders += 1
        return render_variant(edition, ids, *more)

    renderer.render_variant = counted  # type: ignore[method-assign]
    transport = make_transport(nl.config)
    try:
        report = Sender(nl, transport, renderer=renderer).send(MONTH)
    finally:
        transport.close()
    assert report.sent == 36 and report.failed == 0
    assert report.variants_rendered == renders
    return renders


def parts(message: EmailMessage) -> tuple[str, str]:
    html, text = message.get_body(("html",)), message.get_body(("plain",))
    assert html is not None and text is not None
    return html.get_content(), text.get_content()


def all_hrefs(html: str) -> list[str]:
    return [str(h) for h in lxml.html.document_fromstring(html).xpath("//a/@href")]


def summary_urls(nl: Newsletter) -> set[str]:
    from newsletter.content.store import edition_content, get_edition
    with nl.session() as session:
        edition = edition_content(get_edition(session, MONTH))
    urls = {url for item in edition.items for url in summary_links(item)}
    urls |= {f"{BASE}/archive/{MONTH}#{item.uid}" for item in edition.items}
    return urls


def test_tracked_send_renders_once_per_variant_and_puts_only_edition_links_behind_r(
        make_newsletter: MakeNewsletter, smtp_server: SMTPCatcher) -> None:
    nl = make_newsletter(click_tracking=1)
    assert send_to_many(nl) == 3
    clicks = ClickLinks(TokenSigner([TEST_SECRET]), BASE)
    signer = TokenSigner([TEST_SECRET])
    edition_urls = summary_urls(nl)
    tracked_by_variant: dict[str, set[str]] = defaultdict(set)
    assert len(smtp_server.messages) == 36
    for received in smtp_server.messages:
        message = received.parse()
        html, text = parts(message)
        hrefs = all_hrefs(html)
        tracked = [h for h in hrefs if h.startswith(f"{BASE}/r/")]
        assert tracked, "an edition without a single tracked link"
        targets = {clicks.read(urlsplit(h).path[3:]).url for h in tracked}
        assert targets <= edition_urls
        leftovers = [h for h in hrefs if h in edition_urls]
        assert leftovers == [], f"untracked edition links: {leftovers}"
        assert not [u for u in edition_urls if u in text], "an edition link left in the text part"
        assert set(re.findall(re.escape(BASE) + r"/r/[A-Za-z0-9_.-]+", text)) == set(tracked)
        unsubscribe = next(h for h in hrefs if h.startswith(f"{BASE}/u/"))
        signer.verify(Purpose.UNSUBSCRIBE, urlsplit(unsubscribe).path[3:])
        assert unsubscribe in text
        assert "/r/" not in str(message["List-Unsubscribe"])
        assert [h for h in hrefs if h.startswith(f"{BASE}/preferences/")]
        assert f"{BASE}/archive/{MONTH}" in hrefs  # "view in your browser" stays as it is
        variant = frozenset(targets)
        tracked_by_variant[str(sorted(variant))].update(tracked)
    assert len(tracked_by_variant) == 3
    for links in tracked_by_variant.values():  # every reader of a variant: the very same links
        assert len(links) == len({clicks.read(urlsplit(h).path[3:]) for h in links})


def test_untracked_send_has_no_r_link_anywhere(make_newsletter: MakeNewsletter,
                                               smtp_server: SMTPCatcher) -> None:
    nl = make_newsletter()
    assert send_to_many(nl) == 3
    edition_urls = summary_urls(nl)
    for received in smtp_server.messages:
        assert b"/r/" not in received.data
        html, text = parts(received.parse())
        assert "/r/" not in html and "/r/" not in text
        assert {h for h in all_hrefs(html) if h in edition_urls}


def test_a_received_link_redirects_and_counts_for_its_summary(
        make_newsletter: MakeNewsletter, smtp_server: SMTPCatcher) -> None:
    nl = make_newsletter(click_tracking=1)
    send_to_many(nl)
    clicks = ClickLinks(TokenSigner([TEST_SECRET]), BASE)
    html, _ = parts(smtp_server.messages[0].parse())
    link = next(h for h in all_hrefs(html) if h.startswith(f"{BASE}/r/"))
    target = clicks.read(urlsplit(link).path[3:])
    with live_site(nl) as site:
        answer = site.request(link)
        site.request(link, method="HEAD")
    assert (answer.status, answer.location) == (302, target.url)
    figures = click_figures(nl, MONTH)
    [summary] = figures["summaries"]
    assert (summary["summary_uid"], summary["clicks"]) == (target.summary_uid, 1)
    assert summary["headline"]
    assert summary["links"] == [{"url": target.url, "clicks": 1}]


def test_status_shows_clicks_per_summary_and_link_with_the_caveat(
        make_newsletter: MakeNewsletter, smtp_server: SMTPCatcher, run_cli: RunCli) -> None:
    nl = make_newsletter(click_tracking=1)
    send_to_many(nl)
    html, _ = parts(next(m.parse() for m in smtp_server.messages
                         if "reader0@example.org" in m.recipients))  # all three summaries
    tracked = [h for h in all_hrefs(html) if h.startswith(f"{BASE}/r/")]
    with live_site(nl) as site:
        for n, link in enumerate(tracked):
            for reader in range(n + 1):  # link n: n + 1 readers
                assert site.request(link, user_agent=f"Reader {reader}").status == 302
    clicks = ClickLinks(TokenSigner([TEST_SECRET]), BASE)
    expected = {clicks.read(urlsplit(h).path[3:]).url: n + 1 for n, h in enumerate(tracked)}

    run_cli.env["NEWSLETTER_CLICK_TRACKING"] = "1"
    document = json.loads(run_cli("status", MONTH, "--json").stdout)["clicks"]
    assert document["tracking"] is True and "approximate" in document["approximate"]
    assert document["total"] == sum(expected.values())
    got = {link["url"]: link["clicks"] for s in document["summaries"] for link in s["links"]}
    assert got == expected
    headlines = {s.headline for s in SUMMARIES}
    assert {s["headline"] for s in document["summaries"]} <= headlines
    text = run_cli("status", MONTH).stdout
    assert f"clicks: {document['total']} (approximate" in text
    for summary in document["summaries"]:
        assert f"{summary['clicks']:>7}  {summary['headline']}" in text
        for link in summary["links"]:
            assert f"{link['clicks']:>9}  {link['url']}" in text
