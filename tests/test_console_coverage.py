"""Topic coverage (/admin/topics) and the audit log's filters (/admin/audit), through the real
Flask app on SQLite and PostgreSQL: coverage counted against a store built by hand (the last 12
editions only; followers as the planner counts recipients: all-topics readers in every topic,
paused, unsubscribed, unconfirmed and suppressed people out), the "followed by many, not covered
recently" list, hostile text shown as text, the audit filters and pages, who may see each page,
and a smoke run of bench/console_pages.py so the benchmark cannot rot."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import lxml.html
import pytest
from flask.testing import FlaskClient
from sqlalchemy import insert, select, update

from newsletter.content.store import assemble_edition, upsert_summary
from newsletter.context import Newsletter
from newsletter.coverage import Coverage, TopicCoverage, topic_coverage
from newsletter.db import utcnow
from newsletter.db.models import Topic
from newsletter.editors import audit
from newsletter.editors.models import AuditEntry, Role
from subscribers.models import Subscriber, SubscriberStatus, subscriber_topics
from subscribers.store import add_subscriber, suppress

from .builders import SUMMARIES
from .conftest import REPO, RunCli, make_config
from .console_journey_support import serious
from .console_support import PASSWORD, csrf, make_editor, sign_in
from .live_site import Served
from .test_web_browser import AXE, CHROMIUM, browser  # noqa: F401  (the fixture)

OWNER = "owner@example.org"
EDITOR = "editor@example.org"
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'

pytestmark = pytest.mark.usefixtures("cheap_hashing")


@pytest.fixture
def team(newsletter: Newsletter) -> Newsletter:
    make_editor(newsletter, OWNER, name="Olive Owner", role=Role.OWNER)
    make_editor(newsletter, EDITOR, name="Eddie Editor")
    return newsletter


def page_of(client: FlaskClient, url: str, status: int = 200) -> lxml.html.HtmlElement:
    answer = client.get(url)
    assert answer.status_code == status, answer.get_data(as_text=True)[:2000]
    return lxml.html.document_fromstring(answer.get_data(as_text=True))


# ---------------------------------------------------------------------------- the store

MONTHS = [f"2014-{m:02d}" for m in range(1, 13)] + ["2015-01"]
"""Thirteen editions: the oldest (2014-01) falls outside the last twelve."""


def topics_of(month: str) -> list[tuple[str, ...]]:
    if month == "2015-01":
        return [("empathy", "training"), ("empathy",)]
    if month == "2014-06":
        return [("training",)]
    if month == "2014-01":
        return [("attachment",)]
    return [("miscellaneous",)]


def build(nl: Newsletter) -> None:
    """Editions as `topics_of` says; readers: three follow all topics (one with a stray topic row,
    which must not count twice), three chose attachment, two depression, one empathy; and, none of
    whom count, a paused, an unsubscribed and an unconfirmed reader and a suppressed all-topics one."""
    with nl.session() as session:
        for month in MONTHS:
            for n, chosen in enumerate(topics_of(month)):
                upsert_summary(session, replace(SUMMARIES[0], month=month, topics=chosen,
                                                headline=f"Summary {n} of {month}"))
            assemble_edition(session, month)
        people: list[tuple[str, frozenset[str] | None, SubscriberStatus]] = [
            ("all1@example.org", None, SubscriberStatus.ACTIVE),
            ("all2@example.org", None, SubscriberStatus.ACTIVE),
            ("all3@example.org", None, SubscriberStatus.ACTIVE),
            *((f"att{i}@example.org", frozenset({"attachment"}), SubscriberStatus.ACTIVE)
              for i in range(3)),
            *((f"dep{i}@example.org", frozenset({"depression-and-depressive-symptoms"}),
               SubscriberStatus.ACTIVE) for i in range(2)),
            ("emp@example.org", frozenset({"empathy"}), SubscriberStatus.ACTIVE),
            ("paused@example.org", frozenset({"attachment"}), SubscriberStatus.ACTIVE),
            ("gone@example.org", frozenset({"attachment"}), SubscriberStatus.UNSUBSCRIBED),
            ("new@example.org", None, SubscriberStatus.UNCONFIRMED),
            ("suppressed@example.org", None, SubscriberStatus.ACTIVE),
        ]
        for email, topics, status in people:
            add_subscriber(session, email, name=email.split("@")[0], topics=topics, status=status)
        session.execute(update(Subscriber).where(Subscriber.email == "paused@example.org")
                        .values(paused_at=utcnow()))
        suppress(session, "suppressed@example.org", "complaint")
        stray = session.scalar(select(Subscriber.id).where(Subscriber.email == "all3@example.org"))
        attachment = session.scalar(select(Topic.id).where(Topic.slug == "attachment"))
        session.execute(insert(subscriber_topics).values(subscriber_id=stray, topic_id=attachment))


def test_coverage_counts_the_last_twelve_editions_and_followers_as_the_planner_does(
        newsletter: Newsletter) -> None:
    build(newsletter)
    with newsletter.session() as session:
        coverage = topic_coverage(session)
        taxonomy = list(session.scalars(select(Topic.slug).order_by(Topic.position)))
    assert [c.month for c in coverage.editions] == MONTHS[::-1][:12]  # newest first, 2014-01 out
    assert [t.slug for t in coverage.topics] == taxonomy and len(taxonomy) == 36
    by_slug = {t.slug: t for t in coverage.topics}
    assert coverage.everyone == 3
    assert by_slug["attachment"].followers == 6  # 3 chose it + 3 all-topics, the stray row once
    assert by_slug["depression-and-depressive-symptoms"].followers == 5
    assert by_slug["empathy"].followers == 4
    assert by_slug["anxiety-disorders"].followers == 3  # only the all-topics readers
    assert by_slug["empathy"].summaries == (2,) + (0,) * 11
    assert by_slug["training"].summaries[0] == 1 and by_slug["training"].covered == 2
    assert by_slug["miscellaneous"].covered == 10
    assert by_slug["attachment"].covered == 0  # covered only by the 13th edition back
    missing = [t.slug for t in coverage.not_covered()]
    assert missing[:2] == ["attachment", "depression-and-depressive-symptoms"]
    assert {"empathy", "training", "miscellaneous"}.isdisjoint(missing)
    assert len(missing) == 33
    assert missing[2:] == [s for s in taxonomy if s not in
                           {"empathy", "training", "miscellaneous", "attachment",
                            "depression-and-depressive-symptoms"}]  # ties in taxonomy order


def topic(slug: str, followers: int, covered: bool = False) -> TopicCoverage:
    return TopicCoverage(slug, slug.title(), followers, (1 if covered else 0, 0))


def test_followed_by_many_is_the_top_third_and_needs_a_follower() -> None:
    rows = [topic("a", 10, covered=True), topic("b", 8), topic("c", 8), topic("d", 3),
            topic("e", 1), topic("f", 0)]
    coverage = Coverage([], rows, 0)
    assert coverage.many == 8  # the 2nd of 6 from the top
    assert [t.slug for t in coverage.not_covered()] == ["b", "c"]
    nobody = Coverage([], [topic("a", 0), topic("b", 0), topic("c", 0)], 0)
    assert nobody.not_covered() == []
    assert Coverage([], [], 0).not_covered() == []


def test_the_coverage_page_shows_the_table_and_the_gaps(team: Newsletter,
                                                        client: FlaskClient) -> None:
    build(team)
    sign_in(client, EDITOR)  # editors may see it, not only owners
    doc = page_of(client, "/admin/topics")
    assert doc.findtext(".//h1") == "Topic coverage"
    table = doc.xpath("//table[caption='Topic coverage']")[0]
    region = table.getparent()
    assert region.get("tabindex") == "0" and region.get("role") == "region"
    assert region.get("aria-labelledby") == table.find("caption").get("id")
    heads = [th.text_content().strip() for th in table.xpath("./thead/tr/th")]
    assert heads[:2] == ["Topic", "Followers"] and heads[-1] == "Editions covering it"
    assert [h.split()[0] for h in heads[2:-1]] == MONTHS[::-1][:12]
    assert all(th.get("scope") == "col" for th in table.xpath("./thead/tr/th"))
    rows = {tr.find("th").text.strip(): tr for tr in table.xpath("./tbody/tr")}
    with team.session() as session:
        names = list(session.scalars(select(Topic.name).order_by(Topic.position)))
    assert list(rows) == names
    empathy = rows[next(n for n in names if n.startswith("Empathy"))]
    cells = [td.text_content().strip() for td in empathy.findall("td")]
    assert cells[0] == "4" and cells[1] == "● 2 summaries" and cells[2] == "–none"
    assert cells[-1] == "1"
    gaps = doc.xpath("//section[@aria-labelledby='not-covered-title']")[0]
    assert gaps.findtext("h2") == "Followed by many, not covered recently"
    items = [li.text_content() for li in gaps.xpath(".//ol/li")]
    assert len(items) == 33 and items[0].endswith(": 6 followers")
    assert items[1].endswith(": 5 followers")
    flagged = [tr.find("th").text.strip() for tr in table.xpath("./tbody/tr[@class='coverage-gap']")]
    assert len(flagged) == 33 and empathy.get("class") is None


def test_an_empty_store_has_no_columns_and_no_gaps(team: Newsletter, client: FlaskClient) -> None:
    sign_in(client, OWNER)
    doc = page_of(client, "/admin/topics")
    heads = doc.xpath("//table[caption='Topic coverage']/thead/tr/th")
    assert len(heads) == 3  # topic, followers, editions covering it: no edition yet
    assert "None:" in doc.xpath("//p[@class='coverage-none']")[0].text_content()


def test_script_in_a_topic_name_shows_as_text(team: Newsletter, client: FlaskClient) -> None:
    build(team)
    with team.session() as session:
        session.execute(update(Topic).where(Topic.slug == "attachment").values(name=HOSTILE))
    sign_in(client, EDITOR)
    body = client.get("/admin/topics").get_data(as_text=True)
    doc = lxml.html.document_fromstring(body)
    assert doc.xpath("//main//script") == [] and doc.xpath("//main//img") == []
    assert HOSTILE in [th.text.strip() for th in doc.xpath("//tbody/tr/th")]
    assert HOSTILE in [li.findtext("strong") for li in doc.xpath("//ol[@class='coverage-missing']/li")]


def test_coverage_and_audit_refuse_anonymous_and_audit_refuses_editors(
        team: Newsletter, client: FlaskClient) -> None:
    for url in ("/admin/topics", "/admin/audit", "/admin/audit?action=login"):
        answer = client.get(url)
        assert answer.status_code == 302 and answer.headers["Location"] == "/admin/login"
    sign_in(client, EDITOR)
    assert client.get("/admin/audit?action=login").status_code == 403
    assert client.get("/admin/topics").status_code == 200


# ---------------------------------------------------------------------------- the audit log

def seed_log(nl: Newsletter) -> None:
    with nl.session() as session:
        audit.record(session, "login.failed", actor="mallory@example.org", client="192.0.2.9",
                     detail={"step": "password"})
        audit.record(session, "summary.save", actor=EDITOR, client="192.0.2.1",
                     detail={"headline": HOSTILE, "topics": ["empathy", "training"], "id": 7})
        audit.record(session, "subscriber.suppress", actor=EDITOR, detail={"reason": "asked"})
        audit.record(session, "subscribers.import", actor=OWNER, detail={"rows": 3})
        audit.record(session, "edition.save", actor=EDITOR)
        audit.record(session, "editor.add", actor=OWNER, detail={"email": EDITOR})


def listed(doc: lxml.html.HtmlElement) -> list[tuple[str, str]]:
    """(action, actor) of every entry shown."""
    found = []
    for p in doc.xpath("//ol[contains(@class, 'audit-log')]/li/p[time]"):
        found.append((p.findtext("strong"), p.text_content().split(" · ")[2].strip()))
    return found


def everything(nl: Newsletter) -> list[tuple[str, str]]:
    """(action, actor) of the whole log, newest first, read straight from the table."""
    with nl.session() as session:
        return [(e.action, e.actor) for e in session.scalars(
            select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc()))]


def test_the_audit_log_filters_by_area_and_actor(team: Newsletter, client: FlaskClient) -> None:
    seed_log(team)
    sign_in(client, OWNER)
    doc = page_of(client, "/admin/audit?action=login")
    assert {a for a, _ in listed(doc)} == {"login.failed", "login.ok"}  # not logout
    client.post("/admin/logout", data={"csrf_token": csrf(client, "/admin/")})
    sign_in(client, OWNER)
    log = everything(team)
    assert "logout" in {a for a, _ in log}
    for area in audit.ACTION_PREFIXES:
        expected = [(a, who) for a, who in log if a.startswith(area)]
        assert listed(page_of(client, f"/admin/audit?action={area}")) == expected, area
    assert [a for a, _ in listed(page_of(client, "/admin/audit?action=subscriber"))] == [
        "subscribers.import", "subscriber.suppress"]
    assert [a for a, _ in listed(page_of(client, "/admin/audit?action=edition"))] == ["edition.save"]
    assert {a for a, _ in listed(page_of(client, "/admin/audit?action=editor"))} == {"editor.add"}
    mine = listed(page_of(client, f"/admin/audit?actor={EDITOR.upper()}"))
    assert mine == [(a, who) for a, who in log if who == EDITOR]
    assert [a for a, _ in mine][:3] == ["edition.save", "subscriber.suppress", "summary.save"]
    both = listed(page_of(client, f"/admin/audit?action=summary&actor={EDITOR}"))
    assert both == [("summary.save", EDITOR)]
    chosen = page_of(client, "/admin/audit?action=send&actor=nobody@example.org")
    assert listed(chosen) == []
    assert chosen.xpath("//select[@id='action']/option[@selected]")[0].get("value") == "send"
    assert chosen.xpath("//input[@id='actor']")[0].get("value") == "nobody@example.org"
    assert chosen.xpath("//label[@for='action']")[0].text == "Area"


def test_a_bad_area_or_actor_is_refused_next_to_the_field(team: Newsletter,
                                                          client: FlaskClient) -> None:
    seed_log(team)
    sign_in(client, OWNER)
    doc = page_of(client, "/admin/audit?action=login%25&actor=x", status=400)
    assert doc.xpath("//p[@id='action-error']")[0].text_content().endswith(
        "Choose one of the areas in the list.")
    assert doc.xpath("//input[@id='actor']")[0].get("value") == "x"  # what was typed stays
    long = "a" * 300 + "@example.org"
    doc = page_of(client, f"/admin/audit?actor={long}", status=400)
    assert doc.xpath("//p[@id='actor-error']")
    assert len(listed(doc)) == len(everything(team))  # unfiltered, and what was typed stays
    assert doc.xpath("//input[@id='actor']")[0].get("value") == long


def test_the_detail_reads_as_key_value_text_and_script_stays_text(
        team: Newsletter, client: FlaskClient) -> None:
    seed_log(team)
    sign_in(client, OWNER)
    doc = page_of(client, "/admin/audit?action=summary")
    detail = doc.xpath("//ul[@class='audit-detail']")[0]
    assert [li.text for li in detail.findall("li")] == [
        f"headline: {HOSTILE}", 'topics: ["empathy", "training"]', "id: 7"]
    assert doc.xpath("//main//script") == [] and doc.xpath("//main//img") == []


def test_pages_keep_the_filters(team: Newsletter, client: FlaskClient) -> None:
    with team.session() as session:
        for n in range(120):
            audit.record(session, "send.pause", actor=EDITOR, detail={"n": n})
            audit.record(session, "schedule.set", actor=OWNER, detail={"n": n})
    sign_in(client, OWNER)
    first = page_of(client, "/admin/audit?action=send")
    assert "120 entries matching" in first.xpath("//p[@role='status']")[0].text_content()
    older = first.xpath("//nav[@aria-label='Pages of the audit log']//a")[0]
    assert older.text == "Older" and "action=send" in older.get("href")
    second = page_of(client, older.get("href"))
    shown = listed(second)
    assert len(shown) == 50 and {a for a, _ in shown} == {"send.pause"}
    third = page_of(client, "/admin/audit?action=send&page=3")
    assert len(listed(third)) == 20
    assert [a.text for a in third.xpath("//nav[@aria-label='Pages of the audit log']//a")] == ["Newer"]


def test_the_cli_prints_the_entries_the_console_shows(team: Newsletter, client: FlaskClient,
                                                      run_cli: RunCli) -> None:
    seed_log(team)
    sign_in(client, OWNER)
    shown = listed(page_of(client, "/admin/audit"))
    printed = json.loads(run_cli("audit", "--json").output)
    assert [(e["action"], e["actor"]) for e in printed] == shown
    with team.session() as session:
        assert printed == [audit.as_document(e) for e in audit.entries(session).entries]


# ---------------------------------------------------------------------------- the benchmark

def bench_module() -> ModuleType:
    path = REPO / "bench" / "console_pages.py"
    sys.path.insert(0, str(path.parent))
    try:
        spec = importlib.util.spec_from_file_location("console_pages_bench", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(path.parent))


@pytest.mark.slow
def test_the_page_benchmark_seeds_and_times_every_console_page(newsletter: Newsletter) -> None:
    bench = bench_module()
    seeded = bench.seed(newsletter, subscribers=500, editions=24, seed=7)
    assert seeded.subscribers == 500 and seeded.editions == 24
    results = bench.measure(newsletter, seeded, repeats=1, warmups=0)
    assert {"/admin/", "/admin/topics", "/admin/audit"} <= {r.path for r in results}
    bad = [(r.path, r.status) for r in results if r.status != 200]
    assert bad == []
    assert all(r.median > 0 for r in results)


# ---------------------------------------------------------------------------- in the browser

SHOTS = REPO / "test-artifacts" / "console"


@pytest.fixture
def console(sqlite_url: str) -> Iterator[tuple[str, Newsletter]]:
    """The app on a loopback port, on a store with the hand-built coverage and log, an owner."""
    served = Served.make()
    nl = Newsletter.open(make_config(sqlite_url, base_url=served.base))
    nl.init()
    make_editor(nl, OWNER, name="Olive Owner", role=Role.OWNER)
    build(nl)
    seed_log(nl)
    try:
        with served.serving(nl):
            yield served.base, nl
    finally:
        nl.close()


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}")
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_coverage_and_audit_pass_axe_at_phone_width(
        console: tuple[str, Newsletter], browser: Any, scheme: str) -> None:  # noqa: F811
    base, nl = console
    context = browser.new_context(color_scheme=scheme, bypass_csp=True,  # axe is injected
                                  viewport={"width": 375, "height": 800})
    page = context.new_page()
    page.goto(f"{base}/admin/login")
    page.get_by_label("Email").fill(OWNER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/admin/")
    found: dict[str, Any] = {}
    for path in ("/admin/topics", "/admin/audit", "/admin/audit?action=summary&actor=x"):
        page.goto(base + path)
        problems = serious(page)
        if problems:
            found[path] = problems
        if page.evaluate("document.documentElement.scrollWidth > "
                         "document.documentElement.clientWidth"):
            found[f"{path} at 375 px"] = "scrolls sideways"
        if path == "/admin/topics":
            region = page.get_by_role("region", name="Topic coverage")
            assert region.get_attribute("tabindex") == "0"
            assert page.get_by_role("table", name="Topic coverage").count() == 1
            region.focus()
            page.keyboard.press("ArrowRight")  # the wide table scrolls inside its own box
            assert page.evaluate("document.querySelector('.table-scroll').scrollWidth > "
                                 "document.querySelector('.table-scroll').clientWidth")
            assert page.get_by_role("heading", name="Followed by many, not covered recently") \
                .is_visible()
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / f"topics-{scheme}.png"), full_page=True)
    context.close()
    assert found == {}


def test_follower_counts_are_kept_for_a_minute_then_counted_again(
        team: Newsletter, client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from newsletter.web.admin import coverage as view
    sign_in(client, EDITOR)

    def everyone() -> str:
        return page_of(client, "/admin/topics").xpath(
            "//tbody/tr[1]/td[1]")[0].text_content().strip()

    assert everyone() == "0"
    with team.session() as session:
        add_subscriber(session, "late@example.org", topics=None)
    assert everyone() == "0"  # within the minute: the counts already made
    monkeypatch.setattr(view, "FOLLOWERS_SECONDS", 0.0)
    assert everyone() == "1"
