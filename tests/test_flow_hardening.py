"""Hardening of the subscriber flows, on SQLite and PostgreSQL with real SMTP.

A confirmation link activates only a signup still waiting for it (an old one cannot bring back
someone who left), and only from its page's button (GET and HEAD change nothing, as scanners use
them); a name is checked by one rule on every way in (web, CSV, CLI), encoded words included; and
signup does the same work in the request whatever the address, so timing does not reveal it.
"""

from __future__ import annotations

import gc
import re
import statistics
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from newsletter.catcher import SMTPCatcher
from newsletter.context import Newsletter
from newsletter.errors import ContentError
from newsletter.tokens import Purpose
from subscribers.csv_io import parse_subscriber_csv
from subscribers.flows import MAX_NAME_LENGTH, Flows, StaleConfirmation, validate_name
from subscribers.models import SubscriberStatus
from subscribers.ratelimit import SlidingWindowLimiter
from subscribers.store import find, suppress

from .conftest import RunCli
from .test_web import BASE, add, confirm, csrf, link, mails, sign, status_of, subscribe

ENCODED_BCC = "=?utf-8?q?Eve=0D=0ABcc:_victim@evil.example?="


def one_click_unsubscribe(client: FlaskClient, message: Any) -> None:
    """What a mail client's unsubscribe button does: the RFC 8058 POST to the header's URL."""
    match = re.search(rf"<{BASE}(/u/[^>]+)>", str(message["List-Unsubscribe"]))
    assert match, message["List-Unsubscribe"]
    response = client.post(match.group(1), data="List-Unsubscribe=One-Click",
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200


def subjects(server: SMTPCatcher) -> list[str]:
    return [str(m["Subject"]) for m in mails(server)]


# -- 4: an old confirmation link cannot resubscribe ---------------------------------------------

def test_an_old_confirmation_link_does_not_bring_back_someone_who_left(
        newsletter: Newsletter, client: FlaskClient, smtp_server: SMTPCatcher) -> None:
    subscribe(client, "ann@example.org")
    old_link = link(mails(smtp_server)[0], "confirm")
    assert "You are subscribed" in confirm(client, old_link).get_data(as_text=True)
    one_click_unsubscribe(client, mails(smtp_server)[1])  # the welcome's header
    assert status_of(newsletter, "ann@example.org") is SubscriberStatus.UNSUBSCRIBED

    page = client.get(old_link)
    assert page.status_code == 400 and "This link no longer works" in page.get_data(as_text=True)
    assert "Confirm my subscription" not in page.get_data(as_text=True)
    forced = client.post(old_link, data={"csrf_token": csrf(client)})  # the button, crafted
    assert forced.status_code == 400 and "sent before the subscription ended" in forced.get_data(
        as_text=True)
    assert status_of(newsletter, "ann@example.org") is SubscriberStatus.UNSUBSCRIBED
    assert len(smtp_server.messages) == 2  # no second welcome

    subscribe(client, "ann@example.org")  # wanting back: a new signup, a new link
    new_link = link(mails(smtp_server)[2], "confirm")
    assert new_link != old_link
    assert client.post(old_link, data={"csrf_token": csrf(client)}).status_code == 400
    assert status_of(newsletter, "ann@example.org") is SubscriberStatus.UNSUBSCRIBED
    back = confirm(client, new_link)
    assert back.status_code == 200 and "You are subscribed" in back.get_data(as_text=True)
    assert status_of(newsletter, "ann@example.org") is SubscriberStatus.ACTIVE
    assert subjects(smtp_server)[3] == "Welcome to Research Digest"

    for again in (old_link, new_link):  # active now: both just say so
        page = client.get(again)
        assert "You are already subscribed" in page.get_data(as_text=True)
        assert "Confirm my subscription" not in page.get_data(as_text=True)
        posted = client.post(again, data={"csrf_token": csrf(client)})
        assert "You are already subscribed" in posted.get_data(as_text=True)
    assert len(smtp_server.messages) == 4

    one_click_unsubscribe(client, mails(smtp_server)[3])  # leaving again kills the newer link too
    assert client.post(new_link, data={"csrf_token": csrf(client)}).status_code == 400
    assert status_of(newsletter, "ann@example.org") is SubscriberStatus.UNSUBSCRIBED


def test_unsubscribing_before_confirming_kills_the_confirmation_link(
        newsletter: Newsletter, client: FlaskClient, smtp_server: SMTPCatcher) -> None:
    subscribe(client, "ann@example.org")
    [confirmation] = mails(smtp_server)
    one_click_unsubscribe(client, confirmation)
    path = link(confirmation, "confirm")
    assert client.post(path, data={"csrf_token": csrf(client)}).status_code == 400
    assert status_of(newsletter, "ann@example.org") is SubscriberStatus.UNSUBSCRIBED
    assert len(smtp_server.messages) == 1


def test_every_link_of_one_pending_signup_works_and_only_once_welcomes(
        newsletter: Newsletter, client: FlaskClient, smtp_server: SMTPCatcher) -> None:
    token = csrf(client)
    subscribe(client, "ann@example.org", token=token)
    subscribe(client, "ann@example.org", token=token)  # the first email seemed lost
    first, second = (link(m, "confirm") for m in mails(smtp_server))
    assert "You are subscribed" in confirm(client, first).get_data(as_text=True)
    assert "You are already subscribed" in client.post(
        second, data={"csrf_token": csrf(client)}).get_data(as_text=True)
    assert subjects(smtp_server).count("Welcome to Research Digest") == 1


def test_the_library_refuses_a_stale_link_and_honours_an_older_unbound_one_only_while_pending(
        newsletter: Newsletter, smtp_server: SMTPCatcher) -> None:  # the welcome goes out
    flows = Flows(newsletter)
    pending = add(newsletter, "pending@example.org", status=SubscriberStatus.UNCONFIRMED)
    left = add(newsletter, "left@example.org", status=SubscriberStatus.UNSUBSCRIBED)
    with pytest.raises(StaleConfirmation):  # a bare uid, as links were signed before
        flows.confirm(sign(Purpose.CONFIRM, left, newsletter), "127.0.0.1")
    assert status_of(newsletter, "left@example.org") is SubscriberStatus.UNSUBSCRIBED
    view, newly = flows.confirm(sign(Purpose.CONFIRM, pending, newsletter), "127.0.0.1")
    assert newly and view.status is SubscriberStatus.ACTIVE
    with pytest.raises(StaleConfirmation):
        flows.confirmation(sign(Purpose.CONFIRM, f"{left}.0123456789abcdef", newsletter))


# -- 5: opening a confirmation link changes nothing --------------------------------------------

def test_get_and_head_on_a_confirmation_link_change_nothing_and_the_button_confirms(
        newsletter: Newsletter, client: FlaskClient, smtp_server: SMTPCatcher) -> None:
    subscribe(client, "ann@example.org", name="Ann", topics_mode="chosen", topic=["empathy"])
    path = link(mails(smtp_server)[0], "confirm")
    for _ in range(3):  # what a link scanner does
        assert client.head(path).status_code == 200
        assert client.get(path).status_code == 200
    assert status_of(newsletter, "ann@example.org") is SubscriberStatus.UNCONFIRMED
    assert len(smtp_server.messages) == 1

    page = client.get(path).get_data(as_text=True)
    assert "ann@example.org" in page and "Empathy" in page
    form = re.search(r'<form method="post" action="([^"]+)">(.*?)</form>', page, re.DOTALL)
    assert form and form.group(1) == path
    assert 'name="csrf_token"' in form.group(2) and "Confirm my subscription" in form.group(2)

    refused = client.post(path, data={})  # no CSRF token: not our page's button
    assert refused.status_code == 400 and "did not come from this site" in refused.get_data(
        as_text=True)
    assert status_of(newsletter, "ann@example.org") is SubscriberStatus.UNCONFIRMED

    done = client.post(path, data={"csrf_token": csrf(client, path)})
    assert done.status_code == 200 and "You are subscribed" in done.get_data(as_text=True)
    assert status_of(newsletter, "ann@example.org") is SubscriberStatus.ACTIVE
    assert subjects(smtp_server)[1] == "Welcome to Research Digest"


# -- 9a, 9b: one name check on every way in ----------------------------------------------------

BAD_NAMES = [
    pytest.param(ENCODED_BCC, "encoded word", id="rfc2047-q"),
    pytest.param("Eve =?UTF-8?B?RXZlDQpCY2M6IHZAZXZpbC5leGFtcGxl?= Smith", "encoded word",
                 id="rfc2047-b"),
    pytest.param("Ann\r\nBcc: victim@example.org", "U+000D at character 4", id="crlf"),
    pytest.param("Ann\u200bLee", "U+200B", id="zero-width"),
    pytest.param("Ann www.spam.example", "web address", id="url"),
    pytest.param("x" * (MAX_NAME_LENGTH + 1), f"longer than {MAX_NAME_LENGTH}", id="long"),
]


@pytest.mark.parametrize(("name", "reason"), BAD_NAMES)
def test_validate_name_refuses(name: str, reason: str) -> None:
    with pytest.raises(ContentError, match=re.escape(reason)) as caught:
        validate_name(name)
    assert caught.value.field == "name"


@pytest.mark.parametrize("name", ["Zoë Ünal", "Ann ?= Bob", "=HYPERLINK(1)", "Dr. O'Brien-Smith",
                                  "x" * MAX_NAME_LENGTH])
def test_validate_name_accepts_ordinary_names(name: str) -> None:
    assert validate_name(f"  {name} ") == name


@pytest.mark.parametrize(("name", "reason"), BAD_NAMES)
def test_the_web_form_refuses_the_same_names(newsletter: Newsletter, client: FlaskClient,
                                              smtp_server: SMTPCatcher, name: str,
                                              reason: str) -> None:
    response = subscribe(client, "eve@example.org", name=name)
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and 'id="name-error"' in page and reason in page
    assert status_of(newsletter, "eve@example.org") is None and smtp_server.messages == []


@pytest.mark.parametrize(("name", "reason"), BAD_NAMES)
def test_csv_import_refuses_the_same_names_at_their_line(name: str, reason: str) -> None:
    quoted = '"' + name.replace('"', '""') + '"'
    data = f"email,name\nok@example.org,Ok\neve@example.org,{quoted}\n".encode()
    rows, errors = parse_subscriber_csv(data, "members.csv", topics=["empathy"])
    assert [row.email for row in rows] == ["ok@example.org"]
    [error] = errors
    assert (error.source, error.line, error.field) == ("members.csv", 3, "name")
    assert reason in error.reason and str(error).startswith("members.csv:3: name: the name ")


def test_csv_import_cleans_names_as_the_web_does() -> None:
    rows, errors = parse_subscriber_csv(b"email,name\nann@example.org,  Ann \xc2\xa0 Lee \n",
                                        "members.csv", topics=[])
    assert errors == [] and [row.name for row in rows] == ["Ann Lee"]


@pytest.mark.parametrize(("name", "reason"), BAD_NAMES)
def test_cli_add_refuses_the_same_names(newsletter: Newsletter, run_cli: RunCli,
                                        name: str, reason: str) -> None:
    result = run_cli("subscribers", "add", "eve@example.org", "--name", name, code=1)
    assert "--name: the name " in result.output and reason in result.output
    assert status_of(newsletter, "eve@example.org") is None


def test_cli_add_stores_the_cleaned_name(newsletter: Newsletter, run_cli: RunCli) -> None:
    run_cli("subscribers", "add", "ann@example.org", "--name", "  Ann   Lee ")
    with newsletter.session() as session:
        ann = find(session, "ann@example.org")
        assert ann is not None and ann.name == "Ann Lee"


# -- 9c: signup takes the same path whatever the address -----------------------------------------

@pytest.fixture
def measured(app: Flask, newsletter: Newsletter) -> Iterator[tuple[list[str], list[Any]]]:
    """(SQL statements run, jobs handed off) during requests: jobs are kept, not run, as in
    production where they run beside the response. Limits are raised for many signups."""
    site = app.extensions["subscribers"]
    site.per_client = SlidingWindowLimiter(100_000, 3600)
    site.per_address = SlidingWindowLimiter(100_000, 3600)
    statements: list[str] = []
    jobs: list[Any] = []
    site.flows.defer = jobs.append

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(newsletter.engine, "before_cursor_execute", record)
    try:
        yield statements, jobs
    finally:
        event.remove(newsletter.engine, "before_cursor_execute", record)


def test_signup_runs_the_same_statements_and_one_hand_off_for_every_address(
        newsletter: Newsletter, app: Flask, client: FlaskClient, smtp_server: SMTPCatcher,
        measured: tuple[list[str], list[Any]]) -> None:
    statements, jobs = measured
    add(newsletter, "pending@example.org", status=SubscriberStatus.UNCONFIRMED)
    add(newsletter, "active@example.org")
    add(newsletter, "bounced@example.org", status=SubscriberStatus.BOUNCED)
    with newsletter.session() as session:
        suppress(session, "bounced@example.org", "hard-bounce")
        suppress(session, "erased@example.org", "erased")
    token = csrf(client)
    seen = {}
    for email in ("new@example.org", "pending@example.org", "active@example.org",
                  "bounced@example.org", "erased@example.org"):
        statements.clear()
        jobs.clear()
        response = subscribe(client, email, token=token, topics_mode="chosen", topic=["training"])
        assert response.status_code == 303
        seen[email] = (list(statements), len(jobs))
        for job in jobs:  # outside the request, as in production
            job()
    assert all(path == seen["new@example.org"] for path in seen.values()), seen
    assert seen["new@example.org"][1] == 1
    assert sorted(m["To"].addresses[0].addr_spec for m in mails(smtp_server)) == [
        "active@example.org", "new@example.org", "pending@example.org"]

    app.extensions["subscribers"].per_address = SlidingWindowLimiter(1, 3600)
    for email in ("limited@example.org", "limited@example.org"):  # the second is refused
        statements.clear()
        jobs.clear()
        subscribe(client, email, token=token, topics_mode="chosen", topic=["training"])
        assert (statements, len(jobs)) == seen["new@example.org"]


def test_signup_answers_as_fast_for_a_suppressed_address_as_for_a_new_one(
        newsletter: Newsletter, client: FlaskClient, measured: tuple[list[str], list[Any]]) -> None:
    """Loose on purpose: interleaved samples, medians within 0.7–1.4 (before the fix: 0.5). The
    request thread's CPU time, not wall time: on a loaded machine wall time mostly measures the
    scheduler (medians of identical requests came out 4× apart), while CPU time still shows the
    work a request does, which is what differed."""
    _, jobs = measured
    rounds, warm_up = 40, 5
    with newsletter.session() as session:
        for n in range(rounds + warm_up):
            suppress(session, f"gone{n}@example.org", "hard-bounce")
    token = csrf(client)
    spent: dict[str, list[float]] = {"new": [], "suppressed": []}

    def timed(kind: str, email: str, keep: bool) -> None:
        start = time.thread_time()
        assert subscribe(client, email, token=token).status_code == 303
        if keep:
            spent[kind].append(time.thread_time() - start)
        jobs.clear()

    gc.disable()
    try:
        for n in range(rounds + warm_up):
            pair = [("new", f"new{n}@example.org"), ("suppressed", f"gone{n}@example.org")]
            for kind, email in pair if n % 2 else reversed(pair):
                timed(kind, email, keep=n >= warm_up)
    finally:
        gc.enable()
    ratio = statistics.median(spent["suppressed"]) / statistics.median(spent["new"])
    assert 0.7 <= ratio <= 1.4, (ratio, spent)
