"""The console's summaries through the real Flask app on SQLite and PostgreSQL: the form creates
and edits summaries through `upsert_summary` (revisions, audit), gives the file loader's own
messages field by field while keeping what was typed, fills the citation from a Crossref on
loopback (and changes nothing when it fails), previews with the email's summary block, autosaves
drafts that do not validate, lists and restores revisions, shows and acknowledges editorial
notices, round-trips through `summary export` / `summary add`, shows script as text everywhere,
and refuses POSTs without CSRF and anonymous requests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lxml.html
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from newsletter.content.autosave import SummaryAutosave
from newsletter.content.history_models import EditorialUpdate, SummaryRevision
from newsletter.content.models import Summary
from newsletter.content.revisions import summary_draft
from newsletter.content.summary_file import parse_summary
from newsletter.context import Newsletter
from newsletter.editors.models import AuditEntry
from newsletter.taxonomy import research_type_slugs, topic_slugs
from newsletter.web import create_app

from .conftest import MakeNewsletter, RunCli, make_config
from .console_support import PASSWORD, csrf, make_editor, sign_in
from .crossref_support import ARTICLE_DOI, CHAPTER_DOI, FAILING, NOT_FOUND, fake_crossref
from .live_site import Served
from .test_web_browser import CHROMIUM, browser  # noqa: F401  (the fixture)

EMAIL = "ada@example.org"
SCRIPT = "<script>alert(1)</script>"

VALID: dict[str, Any] = {
    "month": "2026-10", "status": "ready", "headline": "Does the alliance predict outcome?",
    "byline": "Giorgio A. Tasca", "doi": "10.1037/pst0000172",
    "authors": "Flückiger, C.\r\nDel Re, A. C.", "year": "2018",
    "title": "The alliance in adult psychotherapy: A meta-analytic synthesis",
    "source": "Psychotherapy", "volume": "55", "issue": "4", "pages": "316-340",
    "research_type": "meta-analysis", "topics": ["empathy", "common-factors"],
    "note": "", "body": "The alliance *matters*.", "implications": "Attend to it.",
}
VALID_FILE = """---
month: 2026-10
status: ready
headline: Does the alliance predict outcome?
citation:
  authors:
    - Flückiger, C.
  year: 2018
  title: The alliance
  source: Psychotherapy
topics:
  - empathy
research_type: meta-analysis
---

The alliance *matters*.

## Practice Implications

Attend to it.
"""

pytestmark = pytest.mark.usefixtures("cheap_hashing")


@pytest.fixture
def console(newsletter: Newsletter) -> Iterator[tuple[Newsletter, FlaskClient]]:
    make_editor(newsletter, EMAIL)
    client = create_app(newsletter, testing=True).test_client()
    sign_in(client, EMAIL)
    yield newsletter, client


def page(answer: Any) -> Any:
    return lxml.html.fromstring(answer.get_data(as_text=True))


def post(client: FlaskClient, url: str, values: dict[str, Any], **extra: Any) -> Any:
    token = csrf(client, "/admin/summaries/new")
    return client.post(url, data={"csrf_token": token, **values, **extra})


def field_errors(doc: Any, name: str) -> list[str]:
    found = doc.xpath(f'//div[@id="{name}-error"]/p')
    return [p.text_content().removeprefix("Error: ") for p in found]


def loader_errors(nl: Newsletter, text: str) -> list[str]:
    with nl.session() as session:
        topics, types = topic_slugs(session), research_type_slugs(session)
    with pytest.raises(Exception) as caught:
        parse_summary(text, "x.md", topics=topics, research_types=types)
    return [e.reason for e in getattr(caught.value, "errors", [caught.value])]


def saved(nl: Newsletter) -> Summary:
    with nl.session() as session:
        found = session.scalars(select(Summary)).one()
        session.expunge(found)
        return found


def test_create_then_edit_through_the_form(console: tuple[Newsletter, FlaskClient]) -> None:
    nl, client = console
    form = page(client.get("/admin/summaries/new"))
    labels = {label.text_content().strip() for label in form.xpath("//label")}
    for name in ("DOI", "Month", "Headline", "Byline", "Title", "Authors", "Year", "Journal",
                 "Volume", "Issue", "Pages", "Edited book", "Editors", "Edition", "Publisher",
                 "Research type", "Summary", "Practice implications", "Draft", "Ready",
                 "Empathy"):
        assert name in labels, name
    answer = post(client, "/admin/summaries/new", {**VALID, "body": "Long. " * 8000},
                  action="save")  # 48 000 characters: more than the app's usual 16 KB
    assert answer.status_code == 302, answer.get_data(as_text=True)
    assert len(saved(nl).body_md) == len("Long. " * 8000) - 1
    answer = post(client, f"/admin/summaries/{saved(nl).id}", VALID, action="save")
    assert answer.status_code == 302, answer.get_data(as_text=True)
    first = saved(nl)
    assert first.headline == VALID["headline"] and first.byline == "Giorgio A. Tasca"
    assert first.citation["authors"] == ["Flückiger, C.", "Del Re, A. C."]
    assert first.citation["year"] == 2018 and first.status.value == "ready"
    shown = page(client.get(answer.headers["Location"]))
    assert "Saved" in " ".join(shown.xpath('//*[@role="status"]//text()'))
    answer = post(client, f"/admin/summaries/{first.id}", {**VALID, "headline": "Edited?",
                                                            "status": "draft"})
    assert answer.status_code == 302
    assert saved(nl).headline == "Edited?" and saved(nl).status.value == "draft"
    with nl.session() as session:
        revisions = session.scalars(select(SummaryRevision).order_by(SummaryRevision.number)).all()
        assert [(r.number, r.saved_by) for r in revisions] == [(1, EMAIL), (2, EMAIL),
                                                               (3, EMAIL)]
        actions = session.scalars(select(AuditEntry.action).where(
            AuditEntry.action.like("summary.%")).order_by(AuditEntry.id)).all()
        assert actions == ["summary.create", "summary.edit", "summary.edit"]
    listing = page(client.get("/admin/summaries"))
    assert listing.xpath('//a[text()="New summary"]/@href') == ["/admin/summaries/new"]
    assert listing.xpath("//h2/text()") == ["2026-10"]
    assert listing.xpath("//tbody/tr/th/a/text()") == ["Edited?"]


def test_a_second_summary_with_the_same_headline_is_refused_not_merged(
        console: tuple[Newsletter, FlaskClient]) -> None:
    nl, client = console
    assert post(client, "/admin/summaries/new", VALID).status_code == 302
    again = post(client, "/admin/summaries/new", {**VALID, "body": "Other text"})
    assert again.status_code == 400
    assert "has this headline already" in field_errors(page(again), "headline")[0]
    assert saved(nl).body_md == VALID["body"]


BAD_VALUES = [  # (form values changed, the field, the same bad value in a file)
    ({"topics": ["empathy", "nope"]}, "topics", ("  - empathy\n", "  - empathy\n  - nope\n")),
    ({"headline": ""}, "headline", ("headline: Does the alliance predict outcome?",
                                    "headline: ''")),
    ({"year": "19x4"}, "year", ("year: 2018", "year: 19x4")),
    ({"year": "1850"}, "year", ("year: 2018", "year: 1850")),
    ({"headline": "x" * 301}, "headline", ("headline: Does the alliance predict outcome?",
                                           "headline: " + "x" * 301)),
    ({"title": "Bad\x07title"}, "title", ("title: The alliance", 'title: "Bad\\atitle"')),
    ({"body": "Bad\x01body"}, "body", ("The alliance *matters*.", "Bad\x01body")),
    ({"body": "x" * 50_001}, "body", ("The alliance *matters*.", "x" * 50_001)),
    ({"publisher": "Wiley"}, "book_title", ("  source: Psychotherapy\n",
                                            "  source: Psychotherapy\n  publisher: Wiley\n")),
    ({"source": "", "book_title": "Handbook", "edition": "2nd ed."}, "edition",
     ("  source: Psychotherapy\n", "  book_title: Handbook\n  edition: 2nd ed.\n")),
    ({"month": "2026-13"}, "month", ("month: 2026-10", "month: 2026-13")),
    ({"research_type": "essay"}, "research_type", ("research_type: meta-analysis",
                                                   "research_type: essay")),
    ({"implications": ""}, "implications", ("Attend to it.", "")),
    ({"url": "javascript:alert(1)"}, "url", ("  source: Psychotherapy\n",
                                             "  source: Psychotherapy\n  url: javascript:alert(1)\n")),
]


@pytest.mark.parametrize(("change", "field", "edit"), BAD_VALUES,
                         ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD_VALUES)])
def test_each_message_is_the_file_loaders_and_nothing_typed_is_lost(
        console: tuple[Newsletter, FlaskClient], change: dict[str, Any], field: str,
        edit: tuple[str, str]) -> None:
    nl, client = console
    expected = loader_errors(nl, VALID_FILE.replace(*edit, 1))
    answer = post(client, "/admin/summaries/new", {**VALID, **change})
    assert answer.status_code == 400
    doc = page(answer)
    assert field_errors(doc, field) == expected
    for name, value in {**VALID, **change}.items():
        if name == "topics":
            ticked = doc.xpath('//input[@name="topics"][@checked]/@value')
            assert set(ticked) == set(value) - {"nope"}
        elif name in ("authors", "note", "body", "implications"):
            assert doc.xpath(f'//textarea[@name="{name}"]')[0].text_content() == \
                (value.replace("\r\n", "\n") if "\x01" not in value else value)
        elif name in ("status", "research_type"):
            continue
        else:
            assert doc.xpath(f'//input[@name="{name}"]/@value') == [value], name
    with nl.session() as session:
        assert session.scalars(select(Summary)).all() == []


def test_initials_as_an_author_name_the_line(console: tuple[Newsletter, FlaskClient]) -> None:
    nl, client = console
    expected = loader_errors(nl, VALID_FILE.replace("    - Flückiger, C.\n",
                                                    "    - Hoglend\n    - P.\n"))
    answer = post(client, "/admin/summaries/new", {**VALID, "authors": "Hoglend\r\nP."})
    assert field_errors(page(answer), "authors") == ["Line 2: " + expected[0]]


@pytest.mark.slow  # a Crossref on loopback, or many requests
def test_autofill_from_crossref_without_and_with_htmx(make_newsletter: MakeNewsletter) -> None:
    with fake_crossref() as fake:
        nl = make_newsletter(crossref_url=fake.url)
        make_editor(nl, EMAIL)
        client = create_app(nl, testing=True).test_client()
        sign_in(client, EMAIL)
        typed = {"headline": "My own headline", "doi": ARTICLE_DOI, "title": "typed",
                 "body": "Kept body"}
        doc = page(post(client, "/admin/summaries/new", typed, action="lookup"))
        status = doc.xpath('//*[@id="lookup-status"]')[0].text_content()
        assert "Filled from Crossref: check the title's casing and the authors" in status
        assert doc.xpath('//input[@name="title"]/@value') == [
            "Alliance ruptures, impasses, and enactments: A relational perspective"]
        assert doc.xpath('//textarea[@name="authors"]')[0].text_content() == \
            "Safran, J. D.\nKraus, J."
        assert doc.xpath('//input[@name="source"]/@value') == ["Psychotherapy"]
        assert doc.xpath('//input[@name="pages"]/@value') == ["381-387"]
        assert doc.xpath('//input[@name="headline"]/@value') == ["My own headline"]
        assert doc.xpath('//textarea[@name="body"]')[0].text_content() == "Kept body"
        fragment = post(client, "/admin/summaries/lookup", {"doi": CHAPTER_DOI},
                        headers={"HX-Request": "true"})
        part = lxml.html.fragment_fromstring(fragment.get_data(as_text=True), create_parent="div")
        fields = part.xpath('//*[@id="citation-fields"]')[0]
        assert fields.get("hx-swap-oob") == "true"
        assert fields.xpath('.//input[@name="book_title"]/@value') == [
            "Bergin and Garfield's Handbook of Psychotherapy and Behavior Change"]
        assert fields.xpath('.//input[@name="edition"]/@value') == ["6th"]
        for doi, words in ((NOT_FOUND, "Crossref has no record of that DOI"),
                           (FAILING, "Crossref answered HTTP 500")):
            doc = page(post(client, "/admin/summaries/new", typed | {"doi": doi},
                            action="lookup"))
            assert words in doc.xpath('//*[@id="lookup-status"]')[0].text_content()
            assert doc.xpath('//input[@name="title"]/@value') == ["typed"]
            fragment = post(client, "/admin/summaries/lookup", typed | {"doi": doi})
            assert words in fragment.get_data(as_text=True)
            assert "citation-fields" not in fragment.get_data(as_text=True)


def test_autofill_without_crossref_configured_says_so(
        console: tuple[Newsletter, FlaskClient]) -> None:
    _, client = console
    doc = page(post(client, "/admin/summaries/new", {"doi": ARTICLE_DOI, "title": "typed"},
                    action="lookup"))
    assert "NEWSLETTER_CROSSREF_URL is empty" in doc.xpath('//*[@id="lookup-status"]')[0] \
        .text_content()
    assert doc.xpath('//input[@name="title"]/@value') == ["typed"]


@pytest.mark.slow  # the first render compiles the email templates
def test_the_preview_is_the_email_block_and_lists_the_problems(
        console: tuple[Newsletter, FlaskClient]) -> None:
    _, client = console
    answer = post(client, "/admin/summaries/preview", {**VALID, "year": "x"},
                  headers={"HX-Request": "true"})
    part = lxml.html.fragment_fromstring(answer.get_data(as_text=True), create_parent="div")
    assert part.xpath('//h2[@class="headline"]')[0].text_content() == \
        "Does the alliance predict outcome?"
    assert part.xpath('//*[@class="implications-title"]/text()') == ["Practice Implications"]
    assert part.xpath('//div[@class="prose"]/p/em/text()')[0] == "matters"
    assert any(li.startswith("Year: must be a year")
               for li in part.xpath('//div[@class="preview-problems"]//li/text()'))
    form = page(client.get("/admin/summaries/new"))
    region = form.xpath('//section[@aria-label="Preview"]')[0]
    assert region.get("hx-post") == "/admin/summaries/preview"
    assert region.xpath(".//h2/text()") == ["Preview"]


def test_an_invalid_draft_is_autosaved_and_offered_back(
        console: tuple[Newsletter, FlaskClient]) -> None:
    nl, client = console
    post(client, "/admin/summaries/new", {**VALID, "status": "draft"})
    summary_id = saved(nl).id
    invalid = {**VALID, "status": "draft", "year": "soon", "headline": "Half typed"}
    answer = post(client, "/admin/summaries/autosave", invalid, summary_id=str(summary_id))
    assert answer.status_code == 200 and answer.get_data(as_text=True).startswith(
        "Draft saved at")
    with nl.session() as session:
        stored = session.scalars(select(SummaryAutosave)).one()
        assert stored.fields["text"]["year"] == "soon" and stored.summary_id == summary_id
    assert saved(nl).headline == VALID["headline"]  # the summary itself is untouched
    doc = page(client.get(f"/admin/summaries/{summary_id}"))
    link = doc.xpath('//a[text()="Restore the autosaved draft"]/@href')
    assert link == [f"/admin/summaries/{summary_id}?restore=autosave"]
    doc = page(client.get(link[0]))
    assert doc.xpath('//input[@name="headline"]/@value') == ["Half typed"]
    assert doc.xpath('//input[@name="year"]/@value') == ["soon"]
    new = post(client, "/admin/summaries/autosave", {"headline": "Brand new", "draft_key": "k" * 24})
    assert new.status_code == 200
    doc = page(client.get("/admin/summaries/new"))
    link = doc.xpath('//a[text()="Restore the autosaved draft"]/@href')
    assert link == ["/admin/summaries/new?draft_key=" + "k" * 24]
    assert page(client.get(link[0])).xpath('//input[@name="headline"]/@value') == ["Brand new"]


def test_a_ready_summary_is_never_autosaved(console: tuple[Newsletter, FlaskClient]) -> None:
    nl, client = console
    post(client, "/admin/summaries/new", VALID)
    summary_id = saved(nl).id
    answer = post(client, "/admin/summaries/autosave", {**VALID, "headline": "Changed"},
                  summary_id=str(summary_id))
    assert answer.status_code == 409
    with nl.session() as session:
        assert session.scalars(select(SummaryAutosave)).all() == []
    assert page(client.get(f"/admin/summaries/{summary_id}")).xpath(
        '//*[@id="autosave-status"]') == []


def test_revisions_are_listed_shown_and_restored(console: tuple[Newsletter, FlaskClient]) -> None:
    nl, client = console
    post(client, "/admin/summaries/new", VALID)
    summary_id = saved(nl).id
    post(client, f"/admin/summaries/{summary_id}", {**VALID, "headline": "Second headline?"})
    listing = page(client.get(f"/admin/summaries/{summary_id}/revisions"))
    rows = listing.xpath("//tbody/tr")
    assert [r.xpath("th/a/text()")[0] for r in rows] == ["Revision 2", "Revision 1"]
    assert rows[0].xpath("td[1]/text()") == [EMAIL]
    shown = page(client.get(f"/admin/summaries/{summary_id}/revisions/1"))
    diff = shown.xpath('//pre[@class="diff"]')[0].text_content()
    assert "-headline: Second headline?" in diff and "+headline: Does the alliance" in diff
    answer = post(client, f"/admin/summaries/{summary_id}/revisions/1/restore", {})
    assert answer.status_code == 302
    assert saved(nl).headline == VALID["headline"]
    with nl.session() as session:
        last = session.scalars(select(SummaryRevision).order_by(
            SummaryRevision.number.desc())).first()
        assert last is not None and last.number == 3
        assert last.saved_by == f"{EMAIL} (restored revision 1)"
        assert session.scalars(select(AuditEntry.action).where(
            AuditEntry.action == "summary.restore")).all() == ["summary.restore"]
    assert client.get(f"/admin/summaries/{summary_id}/revisions/9").status_code == 404


@pytest.mark.slow  # a Crossref on loopback, or many requests
def test_editorial_updates_are_checked_shown_and_acknowledged(
        make_newsletter: MakeNewsletter) -> None:
    with fake_crossref() as fake:
        nl = make_newsletter(crossref_url=fake.url)
        make_editor(nl, EMAIL)
        client = create_app(nl, testing=True).test_client()
        sign_in(client, EMAIL)
        post(client, "/admin/summaries/new", {**VALID, "doi": ARTICLE_DOI})
        summary_id = saved(nl).id
        answer = post(client, f"/admin/summaries/{summary_id}/updates", {})
        assert answer.status_code == 302
        doc = page(client.get(f"/admin/summaries/{summary_id}"))
        row = doc.xpath('//section[@id="updates"]//tbody/tr')[0]
        assert "Retraction" in row.text_content() and "Blocks scheduling" in row.text_content()
        assert row.xpath(".//a/@href") == ["https://doi.org/10.1037/a0099999"]
        listing = page(client.get("/admin/summaries"))
        assert "1 retraction not acknowledged" in listing.text_content()
        answer = post(client, f"/admin/summaries/{summary_id}/updates/acknowledge",
                      {"notice_doi": "10.1037/a0099999"})
        assert answer.status_code == 302
        with nl.session() as session:
            notice = session.scalars(select(EditorialUpdate)).one()
            assert notice.acknowledged_by == EMAIL
            assert set(session.scalars(select(AuditEntry.action).where(
                AuditEntry.action.like("summary.%")))) >= {"summary.updates",
                                                          "summary.acknowledge"}


@pytest.mark.slow  # many requests, or the CLI twice
def test_a_console_summary_exports_to_a_file_that_summary_add_reads_back(
        console: tuple[Newsletter, FlaskClient], run_cli: RunCli, tmp_path: Path,
        database_url: str) -> None:
    nl, client = console
    chapter = {**VALID, "source": "", "book_title": "Psychotherapy relationships that work",
               "editors": "Norcross, J. C.\r\nLambert, M. J.", "edition": "3",
               "publisher": "Oxford University Press", "note": "An *editor's* note.\r\nTwo lines.",
               "id": "2026-10-alliance"}
    assert post(client, "/admin/summaries/new", chapter).status_code == 302
    before = saved(nl)
    with nl.session() as session:
        draft_before = summary_draft(session.get_one(Summary, before.id))
    out = tmp_path / "exported.md"
    run_cli("summary", "export", str(before.id), "--out", str(out))
    run_cli("summary", "add", str(out))
    with nl.session() as session:
        assert session.scalars(select(Summary.id)).all() == [before.id]
        after = summary_draft(session.get_one(Summary, before.id))
    assert after == draft_before
    assert after.citation.edition == "3rd" and after.citation.editors == (
        "Norcross, J. C.", "Lambert, M. J.")


def test_script_in_every_text_field_shows_as_text(console: tuple[Newsletter, FlaskClient]) -> None:
    nl, client = console

    def scripts(answer: Any) -> list[Any]:
        doc = lxml.html.fromstring(answer.get_data(as_text=True))
        return [s for s in doc.iter("script") if not s.get("src")]

    hostile: dict[str, Any] = {name: SCRIPT for name in VALID if name != "topics"}
    hostile["topics"] = [SCRIPT]
    answer = post(client, "/admin/summaries/new", hostile)
    assert answer.status_code == 400 and scripts(answer) == []
    doc = page(answer)
    assert doc.xpath('//input[@name="headline"]/@value') == [SCRIPT]
    assert scripts(post(client, "/admin/summaries/preview", hostile)) == []
    text_fields = {"headline": SCRIPT, "byline": SCRIPT, "authors": SCRIPT, "title": SCRIPT,
                   "source": SCRIPT, "volume": SCRIPT, "issue": SCRIPT, "pages": SCRIPT,
                   "note": SCRIPT, "body": SCRIPT, "implications": SCRIPT}
    assert post(client, "/admin/summaries/new", {**VALID, **text_fields}).status_code == 302
    summary_id = saved(nl).id
    for url in ("/admin/summaries", f"/admin/summaries/{summary_id}",
                f"/admin/summaries/{summary_id}/revisions",
                f"/admin/summaries/{summary_id}/revisions/1"):
        answer = client.get(url)
        assert answer.status_code == 200 and scripts(answer) == [], url
    doc = page(client.get(f"/admin/summaries/{summary_id}"))
    preview = doc.xpath('//div[@id="preview-body"]')[0]
    assert preview.xpath('.//h2[@class="headline"]')[0].text_content() == SCRIPT
    assert SCRIPT in preview.xpath('.//div[@class="prose"]')[0].text_content()


POSTS = ["/admin/summaries/new", "/admin/summaries/1", "/admin/summaries/lookup",
         "/admin/summaries/preview", "/admin/summaries/autosave",
         "/admin/summaries/1/revisions/1/restore", "/admin/summaries/1/updates",
         "/admin/summaries/1/updates/acknowledge"]


@pytest.mark.slow  # many requests, or the CLI twice
def test_every_post_needs_the_csrf_token_and_a_session(console: tuple[Newsletter, FlaskClient],
                                                       app: Flask) -> None:
    nl, client = console
    post(client, "/admin/summaries/new", VALID)
    for url in POSTS:
        assert client.post(url, data=VALID).status_code == 400, url
        forged = client.post(url, data={**VALID, "csrf_token": "forged"},
                             headers={"X-CSRF-Token": "forged"})
        assert forged.status_code == 400, url
    anonymous = app.test_client()
    for url in ("/admin/summaries", "/admin/summaries/new", "/admin/summaries/1",
                "/admin/summaries/1/revisions", "/admin/summaries/1/revisions/1"):
        answer = anonymous.get(url)
        assert answer.status_code == 302 and answer.headers["Location"] == "/admin/login", url
    assert saved(nl).headline == VALID["headline"]


@pytest.fixture
def live_console(sqlite_url: str) -> Iterator[tuple[str, Newsletter]]:
    """The app on a real WSGI server, with a Crossref on loopback, for Chromium."""
    with fake_crossref() as fake:
        served = Served.make()
        nl = Newsletter.open(make_config(sqlite_url, base_url=served.base, crossref_url=fake.url))
        nl.init()
        make_editor(nl, EMAIL)
        try:
            with served.serving(nl):
                yield served.base, nl
        finally:
            nl.close()


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}")
def test_in_chromium_htmx_fills_previews_and_autosaves_under_the_csp(
        live_console: tuple[str, Newsletter], browser: Any) -> None:  # noqa: F811
    base, nl = live_console
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{base}/admin/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/admin/")
    page.goto(f"{base}/admin/summaries")
    page.get_by_role("link", name="New summary").click()
    page.get_by_label("Headline").fill("Typed <script>window.hacked=1</script> first")
    page.get_by_label("DOI").fill(NOT_FOUND)
    page.get_by_role("button", name="Fill from Crossref").click()
    status = page.locator("#lookup-status")
    status.get_by_text("Crossref has no record").wait_for()
    assert page.url == f"{base}/admin/summaries/new"  # htmx: no navigation
    assert page.get_by_label("Title", exact=True).input_value() == ""
    page.get_by_label("DOI").fill(ARTICLE_DOI)
    page.get_by_role("button", name="Fill from Crossref").click()
    status.get_by_text("Filled from Crossref").wait_for()
    assert page.get_by_label("Title", exact=True).input_value().startswith("Alliance ruptures")
    assert page.get_by_label("Headline").input_value().startswith("Typed <script>")
    page.get_by_label("Summary", exact=True).fill("The body, *live*.")
    preview = page.get_by_role("region", name="Preview")
    preview.locator("em", has_text="live").wait_for()
    assert "window.hacked=1" in preview.locator("h2.headline").inner_text()
    page.locator("#autosave-status").get_by_text("Draft saved at").wait_for(timeout=10_000)
    with nl.session() as session:
        assert session.scalars(select(SummaryAutosave)).one().fields["text"]["body"] == \
            "The body, *live*."
    assert page.evaluate("window.hacked") is None
    page.get_by_label("Practice implications").fill("Attend to it.")
    page.get_by_role("checkbox", name="Empathy", exact=True).check()
    page.get_by_label("Research type").select_option("review")
    page.get_by_role("radio", name="Ready").check()
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_role("status").filter(has_text="Saved").wait_for()
    assert saved(nl).citation["pages"] == "381-387"
    guarded = context.new_page()  # the unsaved-changes guard, on a form typed into
    guarded.goto(f"{base}/admin/summaries/{saved(nl).id}")
    guarded.get_by_label("Headline").press_sequentially("x")
    with guarded.expect_event("dialog") as asked:
        guarded.close(run_before_unload=True)
    assert asked.value.type == "beforeunload"
    asked.value.dismiss()  # stay on the page
    assert guarded.get_by_label("Headline").input_value().startswith("xTyped")  # still open, edit kept
    guarded.close()
    context.close()
    assert [e for e in errors if "Content Security Policy" in e] == []
