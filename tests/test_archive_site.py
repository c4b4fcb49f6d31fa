"""The web archive: built from a real store, checked by an HTML5 parser, an Atom parser, the
email's own links, Flask's test client and headless Chromium."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

import feedparser
import html5lib
import lxml.html
import pytest
from sqlalchemy import select

from newsletter.archive.importer import import_archive
from newsletter.archive.site import ARCHIVE_PREFIX, MARKER, build_site, open_site
from newsletter.archive.tagging import tag_summary
from newsletter.content.models import Edition, EditionStatus, Summary, SummaryStatus
from newsletter.content.store import assemble_edition, edition_content, upsert_summary
from newsletter.context import Newsletter
from newsletter.errors import ContentError
from newsletter.mail.compose import make_renderer

from .builders import SUMMARIES
from .conftest import REPO, make_config
from .test_archive_import import PREAMBLE, run  # noqa: F401  (the CLI fixture)

BASE_URL = "https://digest.example.org"
SUBSCRIBE = BASE_URL + "/subscribe"
ARTIFACTS = REPO / "test-artifacts" / "archive"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SECRET = "Secret"  # in every headline that must never be published

LEGACY = PREAMBLE + "\n".join([
    "November 2014",
    "Transference Work and Mentalizing",
    "Hoglend, P. (2014). Exploration of the patient-therapist relationship in psychotherapy. "
    "American Journal of Psychiatry, 171, 1056-1066.",
    "In this review, transference work improved mentalizing in patients with poor object relations.",
    "Practice Implications",
    "Explore the relationship, but not too often.",
    "January 2014",
    "Is Therapeutic Alliance Really That Important?",
    "Handbook: I review one chapter a month.",
    "Crits-Christoph, P., Connolly Gibbons, M.B., & Mukherjee, D. (2013). Psychotherapy "
    "process-outcome research. In M.E. Lambert (Ed.), Bergin and Garfield's Handbook of "
    "Psychotherapy and Behavior Change, 6th Edition (pp. 298-340). New York: Wiley.",
    "Alliance and symptom change progress in a mutually reinforcing spiral.",
    "Practice Implications",
    "Measure the alliance repeatedly.", ""])
ALLIANCE = "alliance-and-therapeutic-relationship"


def _draft(month: str, headline: str, status: str = "ready"):  # type: ignore[no-untyped-def]
    return replace(SUMMARIES[1], month=month, headline=headline, status=status, source="t.md")


def publish(nl: Newsletter, tmp_path: Path) -> None:
    """A sent month, two imported months, and everything that must stay unpublished."""
    legacy = tmp_path / "legacy.txt"
    legacy.write_text(LEGACY, encoding="utf-8")
    assert not import_archive(nl, legacy).problems
    with nl.session() as session:
        for draft in (*SUMMARIES, _draft("2015-01", f"Withdrawn {SECRET}")):
            upsert_summary(session, draft)
        assemble_edition(session, "2015-01", subject="January 2015: alliance, transference, empathy")
        for month, status in (("2015-02", EditionStatus.DRAFT), ("2015-03", EditionStatus.SCHEDULED),
                              ("2015-04", EditionStatus.SENDING)):
            upsert_summary(session, _draft(month, f"{status.value} {SECRET}"))
            assemble_edition(session, month)
            session.scalars(select(Edition).where(Edition.month == month)).one().status = status
        upsert_summary(session, _draft("2015-05", f"Unassembled {SECRET}"))
        upsert_summary(session, _draft("2015-06", f"Draft summary {SECRET}", status="draft"))
        sent = session.scalars(select(Edition).where(Edition.month == "2015-01")).one()
        sent.status, sent.sent_at = EditionStatus.SENT, datetime(2015, 1, 6, 14, 0, tzinfo=UTC)
        withdrawn = session.scalars(select(Summary).where(Summary.headline.like("Withdrawn%"))).one()
        withdrawn.status = SummaryStatus.DRAFT
        chapter = session.scalars(select(Summary).where(Summary.month == "2014-01")).one()
        tag_summary(session, chapter.id, [ALLIANCE])


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Newsletter, Path]]:
    tmp = tmp_path_factory.mktemp("archive")
    nl = Newsletter.open(make_config(f"sqlite:///{tmp / 'n.db'}", base_url=BASE_URL))
    nl.init()
    publish(nl, tmp)
    build_site(nl, tmp / "out")
    yield nl, tmp / "out" / ARCHIVE_PREFIX
    nl.close()


def _pages(root: Path) -> list[Path]:
    return sorted(root.rglob("*.html"))


def test_only_sent_editions_and_their_ready_summaries_are_published(
        newsletter: Newsletter, tmp_path: Path) -> None:
    publish(newsletter, tmp_path)
    report = build_site(newsletter, tmp_path / "out", base_url=BASE_URL)
    root = tmp_path / "out" / "archive"
    assert (report.root, report.editions, report.summaries) == (root, 3, 5)
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == [
        "2014-01", "2014-11", "2015-01", "assets", "search", "topics", "types"]
    for path in root.rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(encoding="utf-8"), path
    edition = (root / "2015-01" / "index.html").read_text(encoding="utf-8")
    assert [h for h in re.findall(r'<h2 class="headline"[^>]*><a [^>]*>([^<]+)<', edition)] == [
        s.headline for s in SUMMARIES]
    assert report.pages == len(list(p for p in root.rglob("*") if p.is_file())) - 1  # the marker


def test_every_page_is_valid_html5(built: tuple[Newsletter, Path]) -> None:
    pages = _pages(built[1])
    assert len(pages) == 5 + 3 + 1 + 1 + 36 + 1 + 8 + 1  # summaries, editions, index, topics…
    for page in pages:
        parser = html5lib.HTMLParser(strict=True)
        parser.parse(page.read_bytes())
        assert not parser.errors, (page, parser.errors)


def _content_links(nl: Newsletter) -> set[str]:
    """The only absolute links a page may carry: where the cited articles live."""
    site = open_site(nl)
    links = {entry.item.citation.link for entry in site.entries}
    return {link for link in links if link}


def test_no_page_loads_anything_from_elsewhere_and_every_link_resolves(
        built: tuple[Newsletter, Path]) -> None:
    nl, root = built
    allowed = _content_links(nl)
    assert allowed == {"https://doi.org/10.1037/a0037815", "https://doi.org/10.1037/pst0000175"}
    for page in _pages(root):
        tree = lxml.html.fromstring(page.read_bytes())
        for element, _attribute, link, _position in tree.iterlinks():
            parts = urlsplit(link)
            if link == SUBSCRIBE:  # the live signup page, from the subscribe box and the header
                assert element.tag in ("a", "form"), (page, element.tag)
                continue
            if parts.scheme or parts.netloc:
                assert element.tag == "a" and link in allowed, (page, element.tag, link)
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            assert target.is_file(), (page, link)
            if parts.fragment:
                ids = lxml.html.fromstring(target.read_bytes()).xpath("//@id")
                assert parts.fragment in ids, (page, link)
    css = (root / "assets" / "archive.css").read_text(encoding="utf-8")
    script = (root / "assets" / "archive.js").read_text(encoding="utf-8")
    assert "url(" not in css and "@import" not in css and "@font-face" not in css
    assert not re.search(r"https?:|fetch\(|XMLHttpRequest|import\(", script)


def test_the_feed_is_atom_with_the_latest_summaries_and_absolute_links(
        built: tuple[Newsletter, Path]) -> None:
    feed = feedparser.parse((built[1] / "feed.xml").read_bytes())
    assert feed.version == "atom10" and not feed.bozo
    assert feed.feed.title == "Research Digest: archive"
    assert feed.feed.links[0].href == f"{BASE_URL}/archive/feed.xml"
    assert [e.title for e in feed.entries] == [
        *(s.headline for s in SUMMARIES), "Transference Work and Mentalizing",
        "Is Therapeutic Alliance Really That Important?"]
    first, chapter = feed.entries[0], feed.entries[-1]
    assert first.link == f"{BASE_URL}/archive/2015-01/methods-of-repairing-alliance-ruptures/"
    assert first.published == "2015-01-06T14:00:00Z" and first.id.startswith("urn:uuid:")
    assert {t.term for t in first.tags} == {ALLIANCE, "training", "review"}
    assert "Practice Implications" in first.content[0].value
    assert chapter.summary == (
        "Crits-Christoph, P., Connolly Gibbons, M. B., & Mukherjee, D. (2013). Psychotherapy "
        "process-outcome research. In M. E. Lambert (Ed.), Bergin and Garfield's Handbook of "
        "Psychotherapy and Behavior Change (6th ed., pp. 298-340). Wiley.")
    assert len({e.id for e in feed.entries}) == 5


def test_the_emails_archive_links_land_on_the_right_page_and_summary(
        built: tuple[Newsletter, Path]) -> None:
    nl, root = built
    with nl.session() as session:
        edition = edition_content(session.scalars(
            select(Edition).where(Edition.month == "2015-01")).one())
    context = make_renderer(nl).edition_context(edition, (edition.items[0].id,))
    links = [context["archive_url"], *(other["url"] for other in context["others"]
                                       if SECRET not in other["headline"])]  # withdrawn later
    assert links[0] == f"{BASE_URL}/archive/2015-01" and len(links) == 3
    for link in links:
        parts = urlsplit(link)
        page = root.parent / parts.path.lstrip("/") / "index.html"
        ids = lxml.html.fromstring(page.read_bytes()).xpath("//@id")
        assert not parts.fragment or parts.fragment in ids, link


def test_summary_page_offers_the_apa_reference_to_copy(built: tuple[Newsletter, Path]) -> None:
    page = built[1] / "2014-01" / "is-therapeutic-alliance-really-that-important" / "index.html"
    tree = lxml.html.fromstring(page.read_bytes())
    (reference,) = tree.xpath("//textarea[@readonly]")
    assert reference.text.startswith("Crits-Christoph, P., Connolly Gibbons, M. B., & Mukherjee")
    assert tree.xpath(f"//label[@for='{reference.get('id')}']")
    assert tree.xpath("string(//p[@class='citation'])").strip() == (
        "Crits-Christoph, P., Connolly Gibbons, M. B., & Mukherjee, D. (2013). Psychotherapy "
        "process-outcome research. In M. E. Lambert (Ed.), Bergin and Garfield's Handbook of "
        "Psychotherapy and Behavior Change (6th ed., pp. 298-340). Wiley.")
    assert tree.xpath("string(//aside[@class='note'])").split() == [
        "Editor’s", "note", "Handbook:", "I", "review", "one", "chapter", "a", "month."]


def test_the_blueprint_serves_the_same_pages(built: tuple[Newsletter, Path]) -> None:
    from flask import Flask

    from newsletter.web.archive import archive_blueprint
    nl, root = built
    app = Flask(__name__)
    app.extensions["newsletter"] = nl
    app.register_blueprint(archive_blueprint)
    client = app.test_client()
    moved = client.get("/archive/2015-01")
    assert (moved.status_code, moved.headers["Location"]) == (308, "/archive/2015-01/")
    for url, path in (("/archive/", "index.html"), ("/archive/2015-01/", "2015-01/index.html"),
                      ("/archive/topics/training/index.html", "topics/training/index.html"),
                      ("/archive/feed.xml", "feed.xml"), ("/archive/assets/archive.js",
                                                          "assets/archive.js")):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.data == (root / path).read_bytes(), url
    assert client.get("/archive/feed.xml").content_type == "application/atom+xml; charset=utf-8"
    assert "script-src 'self';" in client.get("/archive/").headers["Content-Security-Policy"]
    assert client.get("/archive/2015-02/").status_code == 404  # a draft edition
    assert client.get("/archive/nothing").status_code == 404


def test_archive_build_command_replaces_its_own_output_and_refuses_other_folders(
        request: pytest.FixtureRequest, tmp_path: Path) -> None:
    cli = request.getfixturevalue("run")
    legacy = tmp_path / "legacy.txt"
    legacy.write_text(LEGACY, encoding="utf-8")
    cli("import-archive", str(legacy))
    out = tmp_path / "site"
    result = cli("archive", "build", str(out))
    assert result.stdout == (f"Wrote 57 files to {out / 'archive'}: 2 editions, 2 summaries.\n"
                             f"Open {out / 'archive' / 'index.html'}\n")
    assert (out / "archive" / MARKER).is_file() and oct((out / "archive").stat().st_mode)[-3:] == "755"
    (out / "archive" / "stale.html").write_text("old", encoding="utf-8")
    cli("archive", "build", str(out))
    assert not (out / "archive" / "stale.html").exists()
    assert [p.name for p in out.iterdir()] == ["archive"]
    other = tmp_path / "other"
    (other / "archive").mkdir(parents=True)
    (other / "archive" / "mine.txt").write_text("keep", encoding="utf-8")
    failed = cli("archive", "build", str(other), code=1)
    assert "was not written by `newsletter archive build`" in failed.stderr
    assert (other / "archive" / "mine.txt").read_text(encoding="utf-8") == "keep"


def test_build_site_refuses_a_foreign_folder(built: tuple[Newsletter, Path],
                                             tmp_path: Path) -> None:
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / "index.html").write_text("theirs", encoding="utf-8")
    with pytest.raises(ContentError, match="choose another output folder"):
        build_site(built[0], tmp_path)


# --- in a browser ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (set CHROMIUM to its path)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _titles(page) -> list[str]:  # type: ignore[no-untyped-def]
    return [t.strip() for t in page.locator(".entry-title").all_inner_texts()]


@pytest.mark.browser
def test_topic_page_lists_the_right_posts_and_search_finds_a_summary_word(  # type: ignore[no-untyped-def]
        built: tuple[Newsletter, Path], browser) -> None:
    root = built[1]
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto((root / "topics" / ALLIANCE / "index.html").as_uri())
    assert _titles(page) == ["Methods of Repairing Alliance Ruptures",
                             "Is Therapeutic Alliance Really That Important?"]
    assert page.locator("#count").inner_text() == "2 summaries, newest first."
    _shot(page, "topic")
    page.goto((root / "index.html").as_uri())
    _shot(page, "index")
    page.fill("#site-search", "moderately")  # only in the empathy summary's body
    page.press("#site-search", "Enter")
    page.wait_for_selector("#search-results .entry")
    assert _titles(page) == ["Does Therapist Empathy Predict Outcome?"]
    assert page.locator("#search-status").inner_text() == "1 summary matches “moderately”."
    page.fill("#search-q", "mentaliz")  # a prefix, from an imported post's summary
    assert _titles(page) == ["Transference Work and Mentalizing"]
    _shot(page, "search")
    page.locator("#search-results a").first.click()
    assert page.locator("h1").inner_text() == "Transference Work and Mentalizing"
    assert page.locator("button.copy-button").is_visible()
    page.goto((root / "2015-01" / "index.html").as_uri())
    _shot(page, "edition")
    assert all(url.startswith("file://") for url in requests), requests
    page.close()


@pytest.mark.browser
def test_pages_are_readable_on_a_phone_and_in_dark_mode(  # type: ignore[no-untyped-def]
        built: tuple[Newsletter, Path], browser) -> None:
    root = built[1]
    page = browser.new_page(viewport={"width": 375, "height": 800}, color_scheme="dark")
    page.goto((root / "2015-01" / "index.html").as_uri())
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375
    _shot(page, "edition-phone-dark")
    page.goto((root / "2014-01" / "is-therapeutic-alliance-really-that-important"
               / "index.html").as_uri())
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    _shot(page, "summary-phone-dark")
    page.close()


@pytest.mark.browser
def test_without_javascript_topics_work_and_search_says_why(  # type: ignore[no-untyped-def]
        built: tuple[Newsletter, Path], browser) -> None:
    root = built[1]
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto((root / "topics" / "index.html").as_uri())
    page.get_by_role("link", name="Training").click()
    assert _titles(page) == ["Methods of Repairing Alliance Ruptures"]
    page.goto((root / "search" / "index.html").as_uri() + "?q=alliance")
    assert "needs JavaScript" in page.locator("main").inner_text()
    assert not page.locator("button.copy-button").is_visible()
    context.close()


def test_the_static_archive_can_be_built_with_french_chrome(built: tuple[Newsletter, Path],
                                                            tmp_path: Path) -> None:
    nl, _ = built
    build_site(nl, tmp_path / "fr", language="fr")
    index = (tmp_path / "fr" / ARCHIVE_PREFIX / "index.html").read_text(encoding="utf-8")
    assert '<html lang="fr">' in index and "Tous les numéros" in index
    assert "Every edition" not in index
    edition = (tmp_path / "fr" / ARCHIVE_PREFIX / "2015-01" / "index.html").read_text(encoding="utf-8")
    assert re.search(r'Envoyé le <time datetime="2015-01-06">6 janvier 2015</time>', edition)
    assert "Does Therapist Empathy Predict Outcome?" in edition  # the summaries keep their language


def test_editions_and_summaries_end_with_a_subscribe_box_to_the_live_signup(
        built: tuple[Newsletter, Path]) -> None:
    _, root = built
    for path in (root / "2015-01" / "index.html",
                 root / "2014-01" / "is-therapeutic-alliance-really-that-important" / "index.html"):
        tree = lxml.html.fromstring(path.read_bytes())
        [box] = tree.xpath("//main/section[@class='subscribe-box']")
        [form] = box.xpath(".//form")
        assert (form.get("method"), form.get("action")) == ("get", SUBSCRIBE)
        assert box.xpath(".//input[@name='email' and @type='email']")
        assert tree.xpath("//header//a[@class='subscribe-link']/@href") == [SUBSCRIBE]
    index = lxml.html.fromstring((root / "index.html").read_bytes())
    assert index.xpath("//span[@class='excerpt']")  # an excerpt per summary on the index
