"""The signup as people use it, and the pages in English and French: ticking topics chooses
them, typos do not use up a network's signups, the limit's page keeps what was typed, the
archive and the signup link to each other, and every page follows the reader's language. Through
Flask's test client on SQLite and PostgreSQL, with a real SMTP server where mail goes out."""

from __future__ import annotations

import re
import subprocess
import sys
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from flask.testing import FlaskClient

from newsletter.catcher import SMTPCatcher
from newsletter.context import Newsletter
from newsletter.tokens import Purpose
from subscribers.store import find

from .builders import load_month
from .conftest import REPO
from .test_web import add, csrf, link, sign, subscribe

FRENCH = {"Accept-Language": "fr-CA,fr;q=0.9,en;q=0.5"}


def stored(nl: Newsletter, email: str) -> tuple[str, frozenset[str] | None]:
    with nl.session() as session:
        person = find(session, email)
        assert person is not None
        return person.language, person.topic_slugs


# -- item 5: what people try -------------------------------------------------------------------

def test_ticked_topics_are_chosen_topics_whatever_the_radio_says(
        newsletter: Newsletter, client: FlaskClient, smtp_server: SMTPCatcher) -> None:
    response = subscribe(client, "ann@example.org", topics_mode="all",
                         topic=["empathy", "training"])
    assert response.status_code == 303
    assert stored(newsletter, "ann@example.org") == ("en", frozenset({"empathy", "training"}))
    confirmation = message_from_bytes(smtp_server.messages[0].data, policy=policy.default)
    text = confirmation.get_body(("plain",))
    assert text is not None and "Empathy" in text.get_content()


def test_typos_do_not_use_up_the_networks_signups(newsletter: Newsletter, client: FlaskClient,
                                                 smtp_server: SMTPCatcher) -> None:
    token = csrf(client)
    limit = newsletter.config.rate_limit_per_client
    for n in range(limit * 2):  # a conference room mistyping, again and again
        assert subscribe(client, f"typo{n}@", token=token).status_code == 400
    for n in range(limit):
        assert subscribe(client, f"p{n}@example.org", token=token).status_code == 303
    late = subscribe(client, "late@example.org", token=token, name="Late Comer",
                     topic=["empathy"])
    page = late.get_data(as_text=True)
    assert late.status_code == 429
    wait = int(late.headers["Retry-After"])
    assert 0 < wait <= newsletter.config.rate_limit_window_seconds
    minutes = -(-wait // 60)
    assert f"Please wait {minutes} minute" in page
    assert 'value="late@example.org"' in page and 'value="Late Comer"' in page
    assert re.search(r'id="topic-empathy" name="topic" value="empathy" checked', page)
    assert "<title>Error: Subscribe" in page
    with newsletter.session() as session:
        assert find(session, "late@example.org") is None


def test_the_limit_page_speaks_french_too(newsletter: Newsletter, client: FlaskClient) -> None:
    token = csrf(client)
    for n in range(newsletter.config.rate_limit_per_client):
        client.post("/subscribe", headers=FRENCH, data={
            "csrf_token": token, "email": f"p{n}@example.org", "name": "", "topics_mode": "all"})
    late = client.post("/subscribe", headers=FRENCH, data={
        "csrf_token": token, "email": "tard@example.org", "name": "", "topics_mode": "all"})
    assert late.status_code == 429 and "Veuillez attendre" in late.get_data(as_text=True)


# -- item 6: the archive and the signup link to each other --------------------------------------

def test_the_front_page_is_the_archive_with_signup_one_click_away(
        newsletter: Newsletter, client: FlaskClient) -> None:
    load_month(newsletter)
    front = client.get("/")
    page = front.get_data(as_text=True)
    assert front.status_code == 200 and "<h1>Every edition</h1>" in page
    assert re.search(r'<a class="subscribe-link" href="https://digest\.example\.org/subscribe">', page)
    assert 'href="/archive/search/index.html"' in page  # links work from `/`


def test_the_archives_404_belongs_to_the_archive(client: FlaskClient) -> None:
    missing = client.get("/archive/1999-01/nothing-here/")
    page = missing.get_data(as_text=True)
    assert missing.status_code == 404
    assert 'class="frame site-nav"' in page and "There is no page of the archive" in page
    assert 'href="/archive/search/index.html"' in page
    assert "no-store" in missing.headers["Cache-Control"]


def test_signup_confirmed_and_preferences_pages_link_past_editions(
        newsletter: Newsletter, client: FlaskClient, smtp_server: SMTPCatcher) -> None:
    assert 'href="/archive/">Browse the archive' in client.get("/subscribe").get_data(as_text=True)
    subscribe(client, "ann@example.org")
    [mail] = [message_from_bytes(m.data, policy=policy.default) for m in smtp_server.messages]
    path = link(mail, "confirm")  # type: ignore[arg-type]
    confirmed = client.post(path, data={"csrf_token": csrf(client, path)})
    assert 'href="/archive/">Browse the archive' in confirmed.get_data(as_text=True)
    with newsletter.session() as session:
        person = find(session, "ann@example.org")
        assert person is not None
        uid = person.uid
    page = client.get(f"/preferences/{sign(Purpose.PREFERENCES, uid, newsletter)}")
    assert 'href="/archive/search/index.html">Search it' in page.get_data(as_text=True)


def test_the_subscribe_box_only_fills_in_the_signup_form(client: FlaskClient) -> None:
    page = client.get("/subscribe?email=ann%40example.org%22%3E%3Cscript%3E").get_data(as_text=True)
    assert 'value="ann@example.org&#34;&gt;&lt;script&gt;"' in page
    assert "<script>" not in page


# -- item 8: English and French ------------------------------------------------------------------

def test_pages_follow_accept_language_and_say_so(client: FlaskClient) -> None:
    french = client.get("/subscribe", headers=FRENCH)
    page = french.get_data(as_text=True)
    assert '<html lang="fr">' in page and "<h1>S’abonner</h1>" in page
    assert "Accept-Language" in french.headers["Vary"]
    assert re.search(r'id="language-fr" name="language" value="fr" checked', page)
    assert 'hreflang="en" lang="en">English</a>' in page  # the switch to the other language
    english = client.get("/subscribe?lang=en", headers=FRENCH).get_data(as_text=True)
    assert '<html lang="en">' in english and "<h1>Subscribe</h1>" in english
    assert '<html lang="en">' in client.get("/subscribe", headers={
        "Accept-Language": "de-DE,de;q=0.9"}).get_data(as_text=True)
    for path in ("/nope", "/archive/", "/archive/search/?q=x", "/subscribe/check-your-inbox"):
        assert '<html lang="fr">' in client.get(path, headers=FRENCH).get_data(as_text=True), path
    assert "Page introuvable" in client.get("/nope", headers=FRENCH).get_data(as_text=True)


def test_the_language_chosen_at_signup_is_stored_and_followed(
        newsletter: Newsletter, client: FlaskClient, smtp_server: SMTPCatcher) -> None:
    response = subscribe(client, "marie@example.org", language="fr")
    assert response.status_code == 303
    assert response.headers["Location"] == "/subscribe/check-your-inbox?lang=fr"
    assert "Vérifiez votre boîte" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert stored(newsletter, "marie@example.org")[0] == "fr"
    [mail] = [message_from_bytes(m.data, policy=policy.default) for m in smtp_server.messages]
    path = link(mail, "confirm")  # type: ignore[arg-type]
    page = client.get(path).get_data(as_text=True)  # an English browser, a French subscriber
    assert '<html lang="fr">' in page and "Confirmer mon abonnement" in page
    confirmed = client.post(path, data={"csrf_token": csrf(client, path)}).get_data(as_text=True)
    assert "Vous êtes abonné" in confirmed
    assert mail["Content-Language"] == "fr"  # the emails follow the language chosen too
    welcome = message_from_bytes(smtp_server.messages[-1].data, policy=policy.default)
    assert welcome["Content-Language"] == "fr" and welcome is not mail


def test_preferences_change_the_language_and_dates_are_babels(
        newsletter: Newsletter, client: FlaskClient) -> None:
    uid = add(newsletter, "paul@example.org")
    path = f"/preferences/{sign(Purpose.PREFERENCES, uid, newsletter)}"
    saved = client.post(path, data={"csrf_token": csrf(client, path), "action": "save",
                                    "name": "Paul", "topics_mode": "all", "language": "fr"})
    assert saved.status_code == 303
    assert stored(newsletter, "paul@example.org")[0] == "fr"
    page = client.get(saved.headers["Location"]).get_data(as_text=True)
    assert '<html lang="fr">' in page and "Vos préférences sont enregistrées." in page
    client.post(path, data={"csrf_token": csrf(client, path), "action": "pause"})
    paused = client.get(path).get_data(as_text=True)
    assert re.search(r"en pause depuis le \d{1,2} (janvier|février|mars|avril|mai|juin|juillet|"
                     r"août|septembre|octobre|novembre|décembre) \d{4}", paused), paused
    refused = client.post(path, data={"csrf_token": csrf(client, path), "action": "save",
                                      "name": "Paul", "topics_mode": "all", "language": "klingon"})
    assert refused.status_code == 400
    assert "Choisissez l’une des langues proposées." in refused.get_data(as_text=True)
    assert stored(newsletter, "paul@example.org")[0] == "fr"


def test_every_web_string_is_in_the_french_catalogue(tmp_path: Path) -> None:
    """Extract the web pages' messages as the docs say, and compare with the committed catalogue."""
    pot = tmp_path / "messages.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg",
                    "-k", "_l", "-k", "lazy_gettext", "-o", str(pot), "templates/web",
                    "newsletter/web", "subscribers/flows.py"], cwd=REPO, check=True,
                   capture_output=True)
    with pot.open("rb") as file:
        extracted = {m.id for m in read_po(file) if m.id}
    po = REPO / "newsletter" / "translations" / "fr" / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as file:
        french = {m.id for m in read_po(file) if m.id}
    assert extracted - french == set(), "new messages: run pybabel update -D messages"
    assert french - extracted == set(), "obsolete messages: run pybabel update -D messages"


@pytest.mark.parametrize("path", ["/subscribe", "/archive/", "/archive/search/?q=alliance"])
def test_french_pages_have_no_english_chrome_left(newsletter: Newsletter, client: FlaskClient,
                                                  path: str) -> None:
    load_month(newsletter)
    page = client.get(path, headers=FRENCH).get_data(as_text=True)
    for english in ("Skip to main content", "Subscribe<", "Search the archive", "Topics<",
                    "Email address", "Every edition"):
        assert english not in page, (path, english)


def test_the_limiter_checks_without_counting_and_records_what_was_accepted() -> None:
    from subscribers.ratelimit import SlidingWindowLimiter
    now = [1000.0]
    limiter = SlidingWindowLimiter(2, 60, clock=lambda: now[0])
    for _ in range(10):
        assert limiter.check("room").allowed  # asking costs nothing
    limiter.record("room")
    limiter.record("room")
    refused = limiter.check("room")
    assert not refused.allowed and refused.retry_after == 60
    now[0] += 30
    assert limiter.check("room").retry_after == 30
    now[0] += 30.5
    assert limiter.check("room").allowed


def test_the_optional_logo_is_in_every_frame_with_alt_text_and_allowed_by_the_csp(
        make_newsletter) -> None:  # type: ignore[no-untyped-def]
    from newsletter.web import create_app
    nl = make_newsletter(logo_url="https://cdn.pprnet.example/logo.png", logo_alt="PPRNet")
    client = create_app(nl, testing=True).test_client()
    for path in ("/subscribe", "/archive/", "/archive/nothing/"):
        response = client.get(path)
        page = response.get_data(as_text=True)
        assert '<img class="brand-logo" src="https://cdn.pprnet.example/logo.png" alt="PPRNet">' \
            in page, path
        assert "img-src 'self' https://cdn.pprnet.example;" in \
            response.headers["Content-Security-Policy"], path
    plain = create_app(make_newsletter(), testing=True).test_client().get("/subscribe")
    assert "brand-logo" not in plain.get_data(as_text=True)  # off by default
    assert "img-src 'self';" in plain.headers["Content-Security-Policy"]
