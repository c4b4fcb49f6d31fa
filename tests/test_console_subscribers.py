"""Subscribers in the console (/admin/subscribers), through the real Flask app on SQLite and
PostgreSQL: search by address or name in any case and with IDN domains, pages and counts; one
person's record; suppress and unsuppress with a reason; a CSV import's dry run that lists every
bad row and writes nothing, then the import of exactly the good rows; an export (owner only)
whose formula cells are escaped, as the CLI's are; erase (owner only, password again); hostile
text shown as text; anonymous and CSRF-less POSTs refused."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import lxml.html
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import EnvironBuilder, TestResponse

from newsletter.content.models import Edition
from newsletter.context import Newsletter
from newsletter.editors.models import AuditEntry, Role
from newsletter.sending.models import Delivery, DeliveryStatus
from subscribers.addresses import address_hash
from subscribers.models import Subscriber, SubscriberStatus, Suppression, subscriber_topics
from subscribers.store import add_subscriber, suppress

from .conftest import RunCli
from .console_support import PASSWORD, csrf, make_editor, sign_in
from .test_subscriber_csv import HOSTILE_CSV

OWNER = "owner@example.org"
EDITOR = "editor@example.org"
HOSTILE = '<script>alert("x")</script>'
HOSTILE_PROBLEMS = [("5", "email"), ("6", "name"), ("8", "topics"), ("9", "topics"),
                    ("10", "name"), ("11", "name"), ("12", "–"),
                    ("14", "email"), ("14", "name"), ("14", "topics")]

pytestmark = pytest.mark.usefixtures("cheap_hashing")


@pytest.fixture
def team(newsletter: Newsletter) -> Newsletter:
    make_editor(newsletter, OWNER, name="Olive Owner", role=Role.OWNER)
    make_editor(newsletter, EDITOR, name="Eddie Editor")
    return newsletter


@pytest.fixture
def staging(app: Flask, tmp_path: Path) -> Path:
    folder = tmp_path / "staged"
    app.config["CONSOLE_IMPORT_DIR"] = str(folder)
    return folder


def owner(client: FlaskClient) -> FlaskClient:
    sign_in(client, OWNER)
    return client


def editor(client: FlaskClient) -> FlaskClient:
    sign_in(client, EDITOR)
    return client


def page_of(client: FlaskClient, url: str, status: int = 200) -> lxml.html.HtmlElement:
    answer = client.get(url)
    assert answer.status_code == status, answer.get_data(as_text=True)[:2000]
    return lxml.html.document_fromstring(answer.get_data(as_text=True))


def html(answer: TestResponse) -> lxml.html.HtmlElement:
    return lxml.html.document_fromstring(answer.get_data(as_text=True))


def listed(page: lxml.html.HtmlElement) -> list[str]:
    return [a.text_content() for a in page.cssselect(".subscribers-table tbody th a")]


def counted(page: lxml.html.HtmlElement) -> str:
    return page.get_element_by_id("subscriber-count").text_content()


def add(nl: Newsletter, email: str, name: str = "", **kwargs: object) -> int:
    with nl.session() as session:
        return add_subscriber(session, email, name=name, **kwargs).id  # type: ignore[arg-type]


def people(nl: Newsletter) -> list[str]:
    with nl.session() as session:
        return sorted(session.scalars(select(Subscriber.email)))


def audited(nl: Newsletter, action: str) -> list[dict[str, object]]:
    with nl.session() as session:
        return [e.detail for e in session.scalars(select(AuditEntry).where(
            AuditEntry.action == action).order_by(AuditEntry.id))]


def form_token(page: lxml.html.HtmlElement, action: str) -> str:
    [form] = [f for f in page.forms if f.action == action]
    return form.fields["csrf_token"]


# -- search ------------------------------------------------------------------------------------

def test_search_by_address_and_name_in_any_case_and_by_idn_domain(team: Newsletter,
                                                                  client: FlaskClient) -> None:
    add(team, "Ann.Lee@Example.org", "Ann Lee")
    add(team, "bob@example.org", "Robert MacLEOD")
    add(team, "zoe@bücher.example", "Zoë")
    add(team, "cy_50%@example.net", "Cy")
    owner(client)
    assert listed(page_of(client, "/admin/subscribers?q=ann.lee")) == ["Ann.Lee@example.org"]
    assert listed(page_of(client, "/admin/subscribers?q=EXAMPLE.ORG")) == [
        "bob@example.org", "Ann.Lee@example.org"]  # newest first
    assert listed(page_of(client, "/admin/subscribers?q=macleod")) == ["bob@example.org"]
    for query in ("bücher", "BÜCHER.example", "xn--bcher-kva.example", "zoe@xn--bcher-kva"):
        assert listed(page_of(client, f"/admin/subscribers?q={query}")) == [
            "zoe@bücher.example"], query
    assert listed(page_of(client, "/admin/subscribers?q=Zoë")) == ["zoe@bücher.example"]
    assert listed(page_of(client, "/admin/subscribers?q=_50%25")) == ["cy_50%@example.net"]
    assert listed(page_of(client, "/admin/subscribers?q=_5%25x")) == []  # % and _ are literal
    page = page_of(client, "/admin/subscribers?q=nobody")
    assert listed(page) == [] and counted(page).startswith("0 subscribers matching")
    assert page.get_element_by_id("q").get("value") == "nobody"  # the search is kept


def test_status_filter_pages_and_counts(team: Newsletter, client: FlaskClient) -> None:
    with team.session() as session:
        for n in range(120):
            add_subscriber(session, f"p{n:03}@example.org",
                           status=SubscriberStatus.UNCONFIRMED if n % 4 == 0
                           else SubscriberStatus.ACTIVE)
        suppress(session, "p001@example.org", "manual")
    owner(client)
    first = page_of(client, "/admin/subscribers")
    assert counted(first) == "120 subscribers, newest first. Page 1 of 3."
    assert listed(first)[:2] == ["p119@example.org", "p118@example.org"] and len(listed(first)) == 50
    third = page_of(client, "/admin/subscribers?page=3")
    assert len(listed(third)) == 20 and listed(third)[-1] == "p000@example.org"
    assert counted(third) == "120 subscribers, newest first. Page 3 of 3."  # counted, not scanned
    assert counted(page_of(client, "/admin/subscribers?page=9")) == (
        "120 subscribers, newest first. Page 9 of 3.")
    seen = listed(first) + listed(page_of(client, "/admin/subscribers?page=2")) + listed(third)
    assert len(set(seen)) == 120  # every one once, none twice
    unconfirmed = page_of(client, "/admin/subscribers?status=unconfirmed&page=1")
    assert counted(unconfirmed) == "30 subscribers matching, newest first. Page 1 of 1."
    assert listed(page_of(client, "/admin/subscribers?status=suppressed")) == ["p001@example.org"]
    nxt = page_of(client, "/admin/subscribers?q=p0&status=active").cssselect("nav a")
    assert [a.get("href") for a in nxt if a.text_content() == "Next page"] == [
        "/admin/subscribers?page=2&q=p0&status=active"]
    bad = page_of(client, "/admin/subscribers?status=everyone&q=" + "x" * 300, 400)
    assert bad.get_element_by_id("status-error").text_content().endswith(
        "Choose one of the statuses in the list.")
    assert "at most 254" in bad.get_element_by_id("q-error").text_content()
    assert bad.get_element_by_id("q").get("value") == "x" * 300


# -- one person's record -----------------------------------------------------------------------

def test_the_record_shows_consent_topics_deliveries_suppression_and_script_as_text(
        team: Newsletter, client: FlaskClient) -> None:
    person = add(team, "ann@example.org", "Ann", topics=frozenset({"empathy"}),
                 source="cli: subscribers add")
    with team.session() as session:
        session.get(Subscriber, person).name = HOSTILE  # type: ignore[union-attr]
        edition = Edition(month="2015-01", subject="January")
        session.add(edition)
        session.flush()
        session.add(Delivery(edition_id=edition.id, subscriber_id=person, variant="v",
                             status=DeliveryStatus.FAILED, attempts=3,
                             last_error="550 mailbox unavailable"))
        suppress(session, "ann@example.org", "complaint")
    owner(client)
    answer = client.get(f"/admin/subscribers/{person}")
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200 and HOSTILE not in body
    page = html(answer)
    record = {d.getprevious().text_content(): d.text_content() for d in page.cssselect(".record dd")}
    assert record["Name"] == HOSTILE  # as text
    assert record["Topics"] == "Empathy" and record["Language"] == "en"
    assert record["How"] == "admin" and record["From where"].startswith("cli: subscribers add")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", record["When"])
    [row] = page.cssselect("table tbody tr")
    assert [c.text_content() for c in row] == ["2015-01", "failed", "–", "3",
                                               "550 mailbox unavailable"]
    assert "complaint" in page.cssselect(".suppressed")[0].text_content()
    assert page.cssselect("button")[-2].text_content() == "Unsuppress"
    assert client.get("/admin/subscribers/999999").status_code == 404


# -- suppress and unsuppress -------------------------------------------------------------------

def test_suppress_and_unsuppress_need_a_reason_and_are_audited(team: Newsletter,
                                                               client: FlaskClient) -> None:
    person = add(team, "ann@example.org", "Ann")
    editor(client)
    url = f"/admin/subscribers/{person}"
    token = form_token(page_of(client, url), f"{url}/suppress")
    for reason, message in (("", "Give a reason."), ("  ", "Give a reason."),
                            ("asked\nBcc: x", "one line"), ("x" * 51, "longer than 50")):
        answer = client.post(f"{url}/suppress", data={"csrf_token": token, "reason": reason})
        assert answer.status_code == 400
        assert message in html(answer).get_element_by_id("reason-error").text_content()
    long = html(client.post(f"{url}/suppress", data={"csrf_token": token, "reason": "y" * 51}))
    assert long.get_element_by_id("reason").get("value") == "y" * 51  # nothing typed is lost
    with team.session() as session:
        assert session.scalar(select(func.count()).select_from(Suppression)) == 0
    done = client.post(f"{url}/suppress", data={"csrf_token": token, "reason": "asked by phone"})
    assert done.headers["Location"] == url
    with team.session() as session:
        [kept] = session.scalars(select(Suppression)).all()
        assert (kept.reason, kept.email) == ("asked by phone", "ann@example.org")
    page = page_of(client, url)
    assert "asked by phone" in page.cssselect(".suppressed")[0].text_content()
    assert client.post(f"{url}/unsuppress", data={"csrf_token": token}).status_code == 400
    assert client.post(f"{url}/unsuppress", data={"csrf_token": token,
                                                  "reason": "came back"}).status_code == 302
    with team.session() as session:
        assert session.scalars(select(Suppression)).all() == []
    key = address_hash("ann@example.org")
    assert audited(team, "subscriber.suppress") == [
        {"address_hash": key, "subscriber": person, "reason": "asked by phone"}]
    assert audited(team, "subscriber.unsuppress") == [
        {"address_hash": key, "subscriber": person, "reason": "came back",
         "was": "asked by phone"}]


# -- import ------------------------------------------------------------------------------------

def upload(client: FlaskClient, data: bytes, name: str = "members.csv") -> TestResponse:
    token = csrf(client, "/admin/subscribers/import")
    return client.post("/admin/subscribers/import", content_type="multipart/form-data",
                       data={"csrf_token": token, "file": (io.BytesIO(data), name)})


def stored(nl: Newsletter) -> tuple[int, int, int]:
    with nl.session() as session:
        return (session.scalar(select(func.count()).select_from(Subscriber)) or 0,
                session.scalar(select(func.count()).select_from(subscriber_topics)) or 0,
                session.scalar(select(func.count()).select_from(Suppression)) or 0)


def test_the_dry_run_lists_every_bad_row_and_writes_nothing_then_imports_the_good_rows(
        team: Newsletter, client: FlaskClient, staging: Path) -> None:
    add(team, "ida@example.org", "Ida")  # known: unchanged
    with team.session() as session:
        suppress(session, "ann@example.org", "complaint")  # suppressed: skipped, not revived
    owner(client)
    before = stored(team)
    answer = upload(client, HOSTILE_CSV.encode(), name="<b>members</b>.csv")
    assert answer.status_code == 200
    page = html(answer)
    problems = [[c.text_content() for c in row][:2]
                for row in page.cssselect(".import-problems tbody tr")]
    assert [tuple(p) for p in problems] == HOSTILE_PROBLEMS
    assert "Nothing has been written yet" in page.cssselect("[role=status]")[-1].text_content()
    assert "suppressed: line 2" in page.cssselect("h3 + ul")[0].text_content()
    assert stored(team) == before and audited(team, "subscriber.import") == []
    [button] = page.cssselect("form[action='/admin/subscribers/import/confirm'] button")
    assert button.text_content() == "Import 2 rows"
    assert "<b>" not in answer.get_data(as_text=True)  # the file's name, as text
    assert len(list(staging.glob("*.csv"))) == 1

    token = form_token(page, "/admin/subscribers/import/confirm")
    done = client.post("/admin/subscribers/import/confirm", data={"csrf_token": token,
                                                                  "rows": "999"})
    assert done.headers["Location"] == "/admin/subscribers"
    assert people(team) == ["ida@example.org"]  # ann is suppressed, ida unchanged: 0 added
    assert stored(team)[2] == 1
    [entry] = audited(team, "subscriber.import")
    assert (entry["rows"], entry["added"], entry["unchanged"], entry["skipped"],
            entry["invalid"]) == (2, 0, 1, 1, 10)
    assert list(staging.glob("*.csv")) == []  # and a second confirm imports nothing
    again = client.post("/admin/subscribers/import/confirm", data={"csrf_token": token})
    assert again.headers["Location"] == "/admin/subscribers/import"
    assert len(audited(team, "subscriber.import")) == 1


def test_the_import_writes_exactly_the_good_rows(team: Newsletter, client: FlaskClient,
                                                 staging: Path) -> None:
    editor(client)
    good = "email,name,topics\nnew@example.org,New,empathy;training\nbad,X,\nall@example.org,,\n"
    page = html(upload(client, good.encode()))
    assert [(r[0].text_content(), r[1].text_content())
            for r in page.cssselect(".import-problems tbody tr")] == [("3", "email")]
    assert people(team) == []
    client.post("/admin/subscribers/import/confirm",
                data={"csrf_token": form_token(page, "/admin/subscribers/import/confirm")})
    assert people(team) == ["all@example.org", "new@example.org"]
    with team.session() as session:
        new = session.scalar(select(Subscriber).where(Subscriber.email == "new@example.org"))
        assert new is not None and new.topic_slugs == {"empathy", "training"}
        assert new.consent_source == "import: members.csv"


def test_a_file_the_importer_refuses_is_reported_and_a_tampered_staged_file_is_not_imported(
        team: Newsletter, client: FlaskClient, staging: Path) -> None:
    editor(client)
    answer = upload(client, "email,name\nann@example.org,Zoë\n".encode("cp1252"))
    assert answer.status_code == 400
    assert "not UTF-8" in html(answer).get_element_by_id("file-error").text_content()
    assert upload(client, b"").status_code == 400
    page = html(upload(client, b"email\nann@example.org\n"))
    [staged] = staging.glob("*.csv")
    staged.write_bytes(b"email\nmallory@example.org\n")  # changed between the two steps
    client.post("/admin/subscribers/import/confirm",
                data={"csrf_token": form_token(page, "/admin/subscribers/import/confirm")})
    assert people(team) == []


@pytest.mark.slow  # a 20 MB body
def test_a_file_over_the_cap_is_refused_with_a_message(team: Newsletter, client: FlaskClient,
                                                       staging: Path) -> None:
    from newsletter.web.admin import subscribers as view

    editor(client)
    big = b"email\n" + b"a@example.org\n" * ((view.MAX_UPLOAD_BYTES // 14) + 10)
    builder = EnvironBuilder(path="/admin/subscribers/import", method="POST", data={
        "csrf_token": csrf(client, "/admin/subscribers/import"),
        "file": (io.BytesIO(big), "big.csv")})
    environ = builder.get_environ()  # its body spools to a file, closed here, not at collection
    try:
        answer = client.open(environ)
    finally:
        environ["wsgi.input"].close()
    assert answer.status_code == 413
    assert "larger than 20 MB" in html(answer).get_element_by_id("file-error").text_content()
    assert people(team) == [] and list(staging.glob("*.csv")) == []


# -- export ------------------------------------------------------------------------------------

FORMULAS = [("=1+1", "'=1+1"), ("+x", "'+x"), ("-x", "'-x"), ("@x", "'@x"), ("\tx", "'\tx"),
            ("\rx", "'\rx"), ("plain", "plain")]


@pytest.fixture
def hostile_names(team: Newsletter) -> Newsletter:
    with team.session() as session:
        for n, (name, _) in enumerate(FORMULAS):
            person = add_subscriber(session, f"p{n}@example.org")
            person.name = name  # as a bulk write or an old import could have left it
    return team


def exported(text: str) -> dict[str, list[str]]:
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == ["email", "name", "topics", "status"]
    return {row[0]: row[1:] for row in rows[1:]}


def test_the_export_escapes_formula_cells_as_the_cli_export_does(
        hostile_names: Newsletter, client: FlaskClient, run_cli: RunCli, database_url: str) -> None:
    owner(client)
    token = form_token(page_of(client, "/admin/subscribers"), "/admin/subscribers/export")
    answer = client.post("/admin/subscribers/export", data={"csrf_token": token})
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert answer.headers["Content-Disposition"].startswith('attachment; filename="subscribers-')
    assert answer.headers["Cache-Control"] == "no-store"
    web = exported(answer.get_data(as_text=True))
    assert {email: row[0] for email, row in web.items()} == {
        f"p{n}@example.org": escaped for n, (_, escaped) in enumerate(FORMULAS)}
    assert web["p0@example.org"] == ["'=1+1", "all", "active"]
    cli = exported(run_cli("subscribers", "export").output)
    assert cli == web
    assert [e["rows"] for e in audited(hostile_names, "subscriber.export")] == [7, 7]


def test_an_editor_cannot_export_or_erase(team: Newsletter, client: FlaskClient) -> None:
    person = add(team, "ann@example.org", "Ann")
    editor(client)
    page = page_of(client, "/admin/subscribers")
    assert "Only an owner can export" in page.cssselect(".owner-note")[0].text_content()
    assert not [f for f in page.forms if f.action == "/admin/subscribers/export"]
    record = page_of(client, f"/admin/subscribers/{person}")
    assert not [f for f in record.forms if f.action.endswith("/erase")]
    token = csrf(client, "/admin/subscribers")
    answer = client.post("/admin/subscribers/export", data={"csrf_token": token})
    assert answer.status_code == 403 and "ann@example.org" not in answer.get_data(as_text=True)
    assert client.post(f"/admin/subscribers/{person}/erase", data={
        "csrf_token": token, "current": PASSWORD}).status_code == 403
    assert people(team) == ["ann@example.org"]
    assert audited(team, "subscriber.export") == audited(team, "subscriber.erase") == []


# -- erase -------------------------------------------------------------------------------------

def test_erase_needs_the_owners_password_and_keeps_only_a_hash(team: Newsletter,
                                                               client: FlaskClient) -> None:
    person = add(team, "Ann@Example.org", "Ann")
    owner(client)
    url = f"/admin/subscribers/{person}"
    token = form_token(page_of(client, url), f"{url}/erase")
    wrong = client.post(f"{url}/erase", data={"csrf_token": token, "current": "not it"})
    assert wrong.status_code == 400
    assert html(wrong).get_element_by_id("current-error").text_content().endswith(
        "Your password is not right.")
    assert people(team) == ["Ann@example.org"]
    done = client.post(f"{url}/erase", data={"csrf_token": token, "current": PASSWORD})
    assert done.headers["Location"] == "/admin/subscribers"
    assert people(team) == []
    with team.session() as session:
        [kept] = session.scalars(select(Suppression)).all()
        assert (kept.email, kept.reason) == (None, "erased")
        log = [(e.action, repr(e.detail)) for e in session.scalars(select(AuditEntry))]
    assert ("subscriber.erase", repr({"address_hash": address_hash("ann@example.org"),
                                      "had_record": True})) in log
    assert not [entry for entry in log if "ann@" in entry[1].lower()]
    assert client.get(url).status_code == 404


# -- who may post ------------------------------------------------------------------------------

def subscriber_posts(app: Flask) -> Iterator[str]:
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/admin/subscribers") and "POST" in (rule.methods or ()):
            yield rule.rule.replace("<int:subscriber_id>", "{id}")


def test_every_post_refuses_anonymous_and_csrf_less_requests(team: Newsletter, app: Flask,
                                                             client: FlaskClient) -> None:
    person = add(team, "ann@example.org", "Ann")
    urls = [u.format(id=person) for u in subscriber_posts(app)]
    assert len(urls) == 6
    token = csrf(client)
    for url in urls:
        assert client.post(url, data={"csrf_token": token, "reason": "x",
                                      "current": PASSWORD}).status_code == 403, url
        assert client.post(url).status_code == 400, url
    owner(client)
    for url in urls:
        answer = client.post(url, data={"reason": "x", "current": PASSWORD})
        assert answer.status_code == 400, url
        answer = client.post(url, data={"csrf_token": "forged", "reason": "x",
                                        "current": PASSWORD})
        assert answer.status_code == 400, url
    assert people(team) == ["ann@example.org"] and stored(team)[2] == 0
    with team.session() as session:
        assert session.scalars(select(AuditEntry.action).where(
            AuditEntry.action.startswith("subscriber"))).all() == []


# -- the CLI calls the same functions ----------------------------------------------------------

def test_the_cli_dry_run_writes_nothing_and_suppress_is_audited(team: Newsletter, run_cli: RunCli,
                                                                tmp_path: Path,
                                                                database_url: str) -> None:
    members = tmp_path / "members.csv"
    members.write_text(HOSTILE_CSV, encoding="utf-8")
    result = run_cli("subscribers", "import", "--dry-run", str(members), code=1)
    assert "2 would be added" in result.output and "dry run: nothing written" in result.output
    assert people(team) == []
    run_cli("subscribers", "suppress", "ann@example.org", "--reason", "asked by phone")
    assert run_cli("subscribers", "suppress", "bo@example.org", "--reason", "a\nb",
                   code=1).exit_code == 1
    assert [e["reason"] for e in audited(team, "subscriber.suppress")] == ["asked by phone"]
    add(team, "Ann.Lee@example.org", "Ann Lee")
    add(team, "bob@example.org", "Bob")
    found = json.loads(run_cli("subscribers", "list", "--search", "ANN.L", "--json").output)
    assert [(row["email"], row["status"]) for row in found] == [("Ann.Lee@example.org", "active")]
