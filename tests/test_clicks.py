"""Click links: what is rewritten once per variant, and `/r/` as a real HTTP server answers it:
only genuine tokens redirect, counts are right (GET only, one per client and minute) on SQLite and
PostgreSQL, under parallel requests too."""

from __future__ import annotations

import dataclasses
import html
import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import lxml.html
import pytest
from sqlalchemy import text

from newsletter.clicks import DEDUPE_SECONDS, click_figures, client_key, prune_seen, record_click
from newsletter.clicks.models import ClickSeen
from newsletter.context import Newsletter
from newsletter.domain import EditionContent
from newsletter.mail.clicks import (
    ClickLinks,
    ClickTarget,
    UntrackableLink,
    rewrite_html,
    rewrite_text,
    summary_links,
)
from newsletter.mail.render import Renderer
from newsletter.tokens import Purpose, TokenSigner

from .conftest import TEST_SECRET, MakeNewsletter
from .live_site import live_site
from .test_render import BRANDING, load_edition

BASE = "https://pprnet.example.org"
TARGET = ClickTarget("2015-01", "a1b2c3d4e5f60718293a4b5c6d7e8f90", "https://doi.org/10.1037/a0037815")
TRACKED = re.compile(re.escape(BASE) + r"/r/([A-Za-z0-9_.-]+)")


def links(*keys: str) -> ClickLinks:
    return ClickLinks(TokenSigner(list(keys or [TEST_SECRET])), BASE)


def hrefs(html: str) -> list[str]:
    return [str(h) for h in lxml.html.document_fromstring(html).xpath("//a/@href")]


# -- tokens and rewriting (pure) ----------------------------------------------------------------

def test_a_token_names_month_summary_and_link_and_reads_back() -> None:
    clicks = links()
    token = clicks.token(TARGET)
    assert clicks.read(token) == TARGET
    assert TARGET.url not in token and TARGET.summary_uid not in token  # opaque, not plain


@pytest.mark.parametrize("url", [
    "javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox", "/relative/path", "//evil.example/x", "ftp://files.example.org/a",
    "mailto:editor@example.org", "https://example.org/a b", "https://example.org/\r\nSet-Cookie: x=1",
    "https://example.org/\x00", "https:///no-host",
])
def test_unsafe_targets_are_refused_at_rewrite_time(url: str) -> None:
    with pytest.raises(UntrackableLink):
        links().token(ClickTarget("2015-01", "abc", url))


def sample_edition() -> EditionContent:
    """The golden edition with uids as the store makes them (32 characters at most)."""
    edition = load_edition()
    items = tuple(dataclasses.replace(item, uid=f"{item.id:032x}") for item in edition.items)
    return dataclasses.replace(edition, items=items)


def test_rewrite_tracks_summary_and_also_this_month_links_in_both_parts() -> None:
    edition = sample_edition()
    variant = (101, 103)
    plain = Renderer(BRANDING).render_variant(edition, variant)
    clicks = links()
    tracked = Renderer(BRANDING, rewrite_links=clicks.rewrite).render_variant(edition, variant)

    targets = [clicks.read(t) for t in TRACKED.findall(tracked.html)]
    assert targets, "no /r/ link in the HTML"
    by_uid = {item.uid: item for item in edition.items}
    for target in targets:
        assert target.month == "2015-01" and target.summary_uid in by_uid
    got = {item.id for item in edition.items if item.uid in {t.summary_uid for t in targets}}
    with_links = {item.id for item in edition.items if item.id in variant and summary_links(item)}
    assert got == with_links | {102}  # 102 through its "Also this month" archive link
    dois = {i.citation.link for i in edition.items if i.id in variant and i.citation.link}
    assert dois <= {t.url for t in targets}
    assert f"{BASE}/archive/2015-01#{by_uid_of(edition, 102)}" in {t.url for t in targets}
    for doi in dois:
        assert doi not in hrefs(tracked.html) and doi not in tracked.text
        assert doi in hrefs(plain.html) and doi in plain.text
    assert {clicks.read(t) for t in TRACKED.findall(tracked.text)} == set(targets)
    # per-recipient links and the edition's own archive link are not tracked
    for marker in (tracked.markers["unsubscribe_url"], tracked.markers["preferences_url"]):
        assert marker in hrefs(tracked.html) and marker in tracked.text
    assert f"{BASE}/archive/2015-01" in hrefs(tracked.html)


def by_uid_of(edition: EditionContent, summary_id: int) -> str:
    return next(i.uid for i in edition.items if i.id == summary_id)


def test_markdown_links_are_tracked_and_unsafe_ones_never_become_redirects() -> None:
    edition = sample_edition()
    first = edition.items[0]
    hostile = dataclasses.replace(
        first, body_md="See [the trial](https://trials.example.org/t?id=1&arm=b), "
                       "[mail us](mailto:editor@example.org) and [x](javascript:alert(1)).",
        citation=dataclasses.replace(first.citation, doi=None,
                                     url="javascript:alert(document.cookie)"))
    edition = dataclasses.replace(edition, items=(hostile, *edition.items[1:]))
    clicks = links()
    rendered = Renderer(BRANDING, rewrite_links=clicks.rewrite).render_variant(edition, (first.id,))
    urls = {clicks.read(t).url for t in TRACKED.findall(rendered.html)}
    assert "https://trials.example.org/t?id=1&arm=b" in urls
    assert not [u for u in urls if not u.startswith(("https://", "http://"))]
    assert "mailto:editor@example.org" in hrefs(rendered.html)
    assert not [h for h in hrefs(rendered.html) if h.lower().startswith("javascript:")]


def test_text_and_html_swaps_take_whole_urls_only() -> None:
    short, longer = "https://ex.org/a", "https://ex.org/ab"
    sici = "https://doi.org/10.1002/(SICI)1097-4571(199806)49:8<693::AID-ASI4>3.0.CO;2-0"
    query = "https://ex.org/t?id=1&arm=b"
    swaps = {short: "R1", longer: "R2", sici: "R3", query: "R4"}
    text = (f"See {short}. Then ({longer}) and <{short}>\n{sici}\n"
            f"untouched: {short}x {short}/more x{short} {query}\n")
    assert rewrite_text(text, swaps) == (
        "See R1. Then (R2) and <R1>\nR3\nuntouched: "
        f"{short}x {short}/more x{short} R4\n")
    page = (f'<a href="{short}">a</a><a class="c" href="{html.escape(sici)}">b</a>'
            f'<a href="{html.escape(query)}">c</a><a href="{short}/more">d</a>'
            f'<a href="nl0123unsubscribeurlx">e</a>')
    assert rewrite_html(page, swaps) == (
        '<a href="R1">a</a><a class="c" href="R3">b</a><a href="R4">c</a>'
        f'<a href="{short}/more">d</a><a href="nl0123unsubscribeurlx">e</a>')


def test_a_link_too_long_for_a_token_stays_as_it_is() -> None:
    long = "https://example.org/" + secrets.token_urlsafe(600)  # random: compression cannot help
    assert links().url(ClickTarget("2015-01", "abc", long)) is None


# -- /r/ over HTTP ------------------------------------------------------------------------------

def tokens_that_must_not_redirect() -> dict[str, str]:
    genuine = links().token(TARGET)
    payload, _, signature = genuine.rpartition(".")
    ours = TokenSigner([TEST_SECRET])
    flipped = "A" if genuine[5] != "A" else "B"
    return {
        "forged": "eyJmb28iOiJiYXIifQ.Z1xYzA.c2lnbmF0dXJlLW5vdC1vdXJz",
        "empty-looking": "x",
        "tampered payload": genuine[:5] + flipped + genuine[6:],
        "tampered signature": payload + "." + signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB"),
        "truncated": genuine[:-6],
        "wrong purpose": ours.sign(Purpose.UNSUBSCRIBE, TARGET.payload()),
        "other key": TokenSigner(["another-secret-" + "k" * 32]).sign(Purpose.CLICK, TARGET.payload()),
        "javascript target": ours.sign(Purpose.CLICK, "2015-01 abc javascript:alert(1)"),
        "data target": ours.sign(Purpose.CLICK, "2015-01 abc data:text/html,<b>x</b>"),
        "header injection": ours.sign(Purpose.CLICK, "2015-01 abc https://e.org/\r\nSet-Cookie: a=b"),
        "bad month": ours.sign(Purpose.CLICK, "2015-13 abc https://example.org/"),
        "bad uid": ours.sign(Purpose.CLICK, "2015-01 ../../x https://example.org/"),
        "wrong shape": ours.sign(Purpose.CLICK, "https://example.org/"),
        "too long": links().token(TARGET) + "A" * 600,
    }


@pytest.mark.parametrize("case", list(tokens_that_must_not_redirect()))
def test_only_genuine_tokens_redirect(case: str, make_newsletter: MakeNewsletter) -> None:
    nl = make_newsletter(click_tracking=1)
    token = tokens_that_must_not_redirect()[case]
    with live_site(nl) as site:
        for method in ("GET", "HEAD"):
            answer = site.request(f"/r/{token}", method=method)
            assert answer.status == 404, case
            assert answer.location is None
            assert "Set-Cookie" not in answer.headers
        assert b"Page not found" in site.request(f"/r/{token}").body
    assert click_figures(nl, "2015-01")["total"] == 0


def test_a_genuine_token_redirects_without_cookie_cache_or_referrer(
        make_newsletter: MakeNewsletter) -> None:
    nl = make_newsletter(click_tracking=1)
    with live_site(nl) as site:
        answer = site.request(f"/r/{links().token(TARGET)}")
    assert answer.status == 302
    assert answer.location == TARGET.url
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert "Set-Cookie" not in answer.headers


def test_retired_keys_stop_redirecting_and_older_keys_still_do(
        make_newsletter: MakeNewsletter) -> None:
    old, new = "old-key-" + "o" * 32, "new-key-" + "n" * 32
    token = links(old).token(TARGET)
    with live_site(make_newsletter(secret_key=f"{new},{old}")) as site:
        assert site.request(f"/r/{token}").location == TARGET.url
    with live_site(make_newsletter(secret_key=new)) as site:
        assert site.request(f"/r/{token}").status == 404


def test_counts_get_once_per_client_and_minute_not_head(make_newsletter: MakeNewsletter) -> None:
    nl = make_newsletter(click_tracking=1)
    other = ClickTarget(TARGET.month, TARGET.summary_uid, "https://example.org/full-text")
    with live_site(nl) as site:
        path, other_path = f"/r/{links().token(TARGET)}", f"/r/{links().token(other)}"
        for _ in range(3):
            assert site.request(path, user_agent="Reader A").status == 302
        assert site.request(path, user_agent="Reader B").status == 302
        head = site.request(path, method="HEAD", user_agent="Scanner C")
        assert (head.status, head.location) == (302, TARGET.url)
        assert site.request(other_path, user_agent="Reader A").status == 302
        options = site.request(path, method="OPTIONS")
        assert (options.status, options.location) == (200, None)
        assert set(options.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
        assert site.request(path, method="POST").status == 405
    figures = click_figures(nl, TARGET.month)
    assert figures["total"] == 3
    [summary] = figures["summaries"]
    assert summary["clicks"] == 3
    assert summary["links"] == [{"url": TARGET.url, "clicks": 2}, {"url": other.url, "clicks": 1}]
    assert "approximate" in figures["approximate"]


@pytest.mark.parametrize(("hops", "expected"), [(0, 1), (1, 2)])
def test_the_client_address_is_the_one_the_proxy_setting_trusts(
        make_newsletter: MakeNewsletter, hops: int, expected: int) -> None:
    """Without a trusted proxy a forged X-Forwarded-For is ignored (one client, counted once);
    behind one proxy hop it names the client."""
    nl = make_newsletter(click_tracking=1, proxy_hops=hops)
    with live_site(nl) as site:
        for forwarded in ("198.51.100.1", "198.51.100.2", "198.51.100.1"):
            answer = site.request(f"/r/{links().token(TARGET)}",
                                  headers={"X-Forwarded-For": forwarded})
            assert answer.status == 302
    assert click_figures(nl, TARGET.month)["total"] == expected


def test_with_tracking_off_links_still_redirect_and_nothing_is_counted(
        make_newsletter: MakeNewsletter) -> None:
    nl = make_newsletter()
    with live_site(nl) as site:
        assert site.request(f"/r/{links().token(TARGET)}").location == TARGET.url
    figures = click_figures(nl, TARGET.month)
    assert (figures["tracking"], figures["total"], figures["summaries"]) == (False, 0, [])
    with nl.session() as session:
        assert session.query(ClickSeen).count() == 0  # not even a de-duplication key


def test_a_store_that_cannot_count_still_sends_the_reader_on(
        make_newsletter: MakeNewsletter, caplog: pytest.LogCaptureFixture) -> None:
    nl = make_newsletter(click_tracking=1)
    with nl.engine.begin() as connection:
        connection.execute(text("DROP TABLE click_seen"))
    with live_site(nl) as site:
        answer = site.request(f"/r/{links().token(TARGET)}")
    assert (answer.status, answer.location) == (302, TARGET.url)
    assert "not counted" in caplog.text
    assert click_figures(nl, TARGET.month)["total"] == 0


def test_parallel_requests_count_each_client_once(make_newsletter: MakeNewsletter) -> None:
    nl = make_newsletter(click_tracking=1)
    clients = [f"Reader {n}" for n in range(12)]
    with live_site(nl) as site, ThreadPoolExecutor(max_workers=12) as pool:
        path = f"/r/{links().token(TARGET)}"
        answers = list(pool.map(lambda ua: site.request(path, user_agent=ua).status, clients * 3))
    assert answers == [302] * 36
    assert click_figures(nl, TARGET.month)["total"] == 12


# -- the store ----------------------------------------------------------------------------------

def test_a_minute_later_the_same_client_counts_again_and_old_keys_are_pruned(
        newsletter: Newsletter) -> None:
    t0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    key = client_key(TEST_SECRET, "192.0.2.7", "Reader", TARGET)
    assert len(key) == 64 and "192.0.2.7" not in key
    steps = [(0, True), (1, False), (DEDUPE_SECONDS - 1, False), (DEDUPE_SECONDS, True),
             (DEDUPE_SECONDS + 5, False)]
    for seconds, counted in steps:
        with newsletter.session() as session:
            assert record_click(session, TARGET, key, t0 + timedelta(seconds=seconds)) is counted
    assert click_figures(newsletter, TARGET.month)["total"] == 2
    with newsletter.session() as session:
        record_click(session, TARGET, client_key(TEST_SECRET, "192.0.2.8", "Reader", TARGET), t0)
        assert prune_seen(session, t0 + timedelta(seconds=DEDUPE_SECONDS)) == 1
        assert session.query(ClickSeen).count() == 1
        assert prune_seen(session, t0 + timedelta(seconds=3 * DEDUPE_SECONDS)) == 1


def test_the_client_key_depends_on_address_agent_and_link() -> None:
    other = ClickTarget(TARGET.month, TARGET.summary_uid, "https://example.org/")
    keys = {client_key(TEST_SECRET, "192.0.2.7", "A", TARGET),
            client_key(TEST_SECRET, "192.0.2.8", "A", TARGET),
            client_key(TEST_SECRET, "192.0.2.7", "B", TARGET),
            client_key(TEST_SECRET, "192.0.2.7", "A", other),
            client_key("another-secret-" + "k" * 32, "192.0.2.7", "A", TARGET)}
    assert len(keys) == 5

