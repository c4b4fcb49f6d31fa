"""Emails in English and French: the catalogues are complete and compiled, the chrome follows the
reader's language, and an edition is still rendered once per (variant, language)."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import replace
from datetime import date
from io import BytesIO
from pathlib import Path

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from sqlalchemy import select

from newsletter import i18n
from newsletter.catcher import SMTPCatcher
from newsletter.content import variants
from newsletter.content.assemble import default_preheader, default_subject, for_variant
from newsletter.context import Newsletter
from newsletter.mail.links import TopicNames
from newsletter.mail.render import Renderer
from newsletter.sending.run import send_edition
from newsletter.sending.test_copy import send_test_copy
from subscribers.mailer import Mail, Mailer, MailKind
from subscribers.models import Subscriber

from .builders import MONTH, load_month
from .conftest import REPO
from .email_support import BRANDING, config, parse, part
from .test_render import load_edition

TRANSLATIONS = REPO / "newsletter" / "translations"
CATALOGUES = sorted(TRANSLATIONS.glob("*/LC_MESSAGES/*.po"))
EMAIL_SOURCES = ("templates/email", "templates/_citation.html", "newsletter/content/assemble.py",
                 "newsletter/mail/links.py", "subscribers/mailer.py")


def read_catalogue(path: Path):  # type: ignore[no-untyped-def]
    with path.open("rb") as file:
        return read_po(file)


def test_the_email_catalogue_exists_for_every_other_language() -> None:
    for language in i18n.LANGUAGES[1:]:
        assert (TRANSLATIONS / language / "LC_MESSAGES" / "email.po") in CATALOGUES


@pytest.mark.parametrize("po", CATALOGUES, ids=lambda p: f"{p.parts[-3]}/{p.name}")
def test_french_catalogues_are_complete_and_not_fuzzy(po: Path) -> None:
    catalogue = read_catalogue(po)
    untranslated = [m.id for m in catalogue if m.id and not all(
        m.string if isinstance(m.string, tuple) else (m.string,))]
    fuzzy = [m.id for m in catalogue if m.id and m.fuzzy]
    assert untranslated == [], f"{po}: untranslated messages"
    assert fuzzy == [], f"{po}: fuzzy messages (review, then remove the fuzzy flag)"
    assert not catalogue.fuzzy, f"{po}: the header is marked fuzzy"


@pytest.mark.parametrize("po", CATALOGUES, ids=lambda p: f"{p.parts[-3]}/{p.name}")
def test_committed_mo_is_the_compiled_po(po: Path) -> None:
    """`pybabel compile` was run after the last edit: compile again and compare the messages."""
    mo = po.with_suffix(".mo")
    assert mo.exists(), f"{mo} missing: run pybabel compile -d newsletter/translations"
    compiled = BytesIO()
    write_mo(compiled, read_catalogue(po))
    assert mo.read_bytes() == compiled.getvalue(), f"{mo} is stale: run pybabel compile"


@pytest.mark.process
def test_every_email_string_is_in_the_catalogue(tmp_path: Path) -> None:
    """What `pybabel extract` finds in the email sources is what the French catalogue holds."""
    pot = tmp_path / "email.pot"
    subprocess.run([str(Path(sys.executable).parent / "pybabel"), "extract", "-F",
                    str(REPO / "babel.cfg"), "-o", str(pot), *EMAIL_SOURCES],
                   cwd=REPO, check=True, capture_output=True)
    extracted = {m.id if isinstance(m.id, str) else tuple(m.id) for m in read_catalogue(pot) if m.id}
    french = {m.id if isinstance(m.id, str) else tuple(m.id)
              for m in read_catalogue(TRANSLATIONS / "fr" / "LC_MESSAGES" / "email.po") if m.id}
    assert extracted - french == set(), "run pybabel update -D email, then translate"
    assert french - extracted == set(), "obsolete messages: run pybabel update -D email"


def test_languages_are_listed_once() -> None:
    """Only newsletter.i18n names the languages; everything else imports them from there."""
    listing = re.compile(r"^\s*(DEFAULT_LANGUAGE|LANGUAGES)\s*(:[^=]+)?=", re.MULTILINE)
    defined = [path.relative_to(REPO).as_posix() for root in ("newsletter", "subscribers")
               for path in (REPO / root).rglob("*.py") if listing.search(path.read_text("utf-8"))]
    assert defined == ["newsletter/i18n.py"]
    assert variants.DEFAULT_LANGUAGE is i18n.DEFAULT_LANGUAGE


@pytest.mark.parametrize(("header", "expected"), [
    ("fr-CA,fr;q=0.9,en;q=0.8", "fr"), ("en-GB, fr;q=0.5", "en"), ("de, fr;q=0.4", "fr"),
    ("de", "en"), ("", "en"), (None, "en"), ("fr;q=0", "en"), ("en;q=0.2, fr;q=0.7", "fr"),
    ("fr;q=abc, en", "en"), ("x" * 2000, "en"), ("*", "en"), ("FR", "fr"),
])
def test_accept_language_negotiation(header: str | None, expected: str) -> None:
    assert i18n.negotiate(header) == expected


def test_languages_normalise_and_unknown_ones_are_refused() -> None:
    assert [i18n.normalise_language(v) for v in ("fr_CA", " FR ", "en-US", "de", "", None)] == [
        "fr", "fr", "en", None, None, None]
    with pytest.raises(ValueError, match="unknown language 'de'"):
        i18n.translations("de")
    with pytest.raises(ValueError, match="unknown gettext domain"):
        i18n.translations("fr", "nope")
    assert i18n.translations("fr") is i18n.translations("fr")


def test_dates_are_formatted_by_babel() -> None:
    assert i18n.format_month(2026, 10, "fr") == "octobre 2026"
    assert i18n.format_month(2026, 10, "en") == "October 2026"
    assert i18n.format_date(date(2026, 10, 6), "fr") == "6 octobre 2026"
    assert i18n.format_date(date(2026, 10, 6), "en") == "October 6, 2026"


def test_default_subject_is_short_and_the_preheader_carries_the_headlines() -> None:
    edition = replace(load_edition(), subject="", preheader="")
    ids = tuple(item.id for item in edition.items)
    english, french = for_variant(edition, ids), for_variant(edition, ids, "fr")
    assert (english.subject, french.subject) == ("3 research summaries · January 2015",
                                                 "3 résumés de recherche · janvier 2015")
    assert len(english.subject) <= 45 and len(french.subject) <= 45
    first, second = edition.items[0].headline, edition.items[1].headline
    assert english.preheader.startswith(f"{first} · {second[:20]}") and len(english.preheader) <= 140
    assert french.preheader == english.preheader, "headlines stay in their own language"
    assert for_variant(edition, ids[:1]).subject == "1 research summary · January 2015"
    assert default_subject("janvier 2015", edition.items[:2], "fr") == \
        "2 résumés de recherche · janvier 2015"
    assert default_preheader(edition.items[:1]) == first


def test_the_editor_still_sets_the_subject() -> None:
    chosen = replace(load_edition(), subject="Ruptures, transference, empathy")
    assert for_variant(chosen, (101,), "fr").subject == "Ruptures, transference, empathy"


@pytest.mark.slow
def test_french_edition_chrome_and_summaries_in_their_own_language() -> None:
    edition = load_edition()
    renderer = Renderer(BRANDING)
    fr = renderer.render_variant(edition, (101, 103), "fr")
    en = renderer.render_variant(edition, (101, 103))
    assert '<html lang="fr"' in fr.html and 'lang="en"' in en.html
    for chrome in ("Implications pour la pratique", "Aussi ce mois-ci", "Se désabonner",
                   "Résumés de recherche mensuels", "janvier 2015"):
        assert chrome in fr.html, chrome
    assert "IMPLICATIONS POUR LA PRATIQUE" in fr.text and "Se désabonner :" in fr.text
    assert "Practice Implications" not in fr.html and "Unsubscribe" not in fr.html
    headline = edition.items[0].headline
    assert headline in fr.text and headline in en.text
    assert renderer.env_for("fr") is renderer.env_for("fr") is not renderer.env_for("en")


def test_topic_words_follow_the_language() -> None:
    names = TopicNames({"empathy": "Empathy"})
    assert (names.describe(None), names.describe(None, "fr")) == ("all topics", "tous les sujets")
    assert names.describe(frozenset(), "fr") == "aucun sujet"
    assert names.describe(frozenset({"empathy"}), "fr") == "Empathy"


@pytest.mark.parametrize("kind", list(MailKind))
def test_transactional_mail_in_french(kind: MailKind) -> None:
    context = {"confirm_url": "https://digest.example.org/confirm/t", "expiry_days": 7,
               "archive_url": ""}
    mail = Mail(kind, "uid", "lea@example.org", "Léa", "tous les sujets", context, language="fr")
    message = parse(Mailer(config(), BRANDING).build(mail).data)
    expected = {MailKind.CONFIRM: "Veuillez confirmer votre abonnement à PPRNet Research Digest",
                MailKind.WELCOME: "Bienvenue à PPRNet Research Digest",
                MailKind.MANAGE: "Votre abonnement à PPRNet Research Digest"}[kind]
    assert message["Subject"] == expected
    assert message["Content-Language"] == "fr"
    html, text = part(message, "html"), part(message, "plain")
    assert '<html lang="fr"' in html
    assert "Se désabonner" in html or kind is MailKind.CONFIRM
    assert "receive" not in text and "Vous recevez" in text
    if kind is MailKind.CONFIRM:
        assert "Le lien est valable 7 jours." in text


def test_an_unknown_stored_language_falls_back_to_english() -> None:
    mail = Mail(MailKind.WELCOME, "uid", "x@example.org", "", "all topics", {"archive_url": ""},
                language="xx")
    message = parse(Mailer(config(), BRANDING).build(mail).data)
    assert message["Content-Language"] == "en"
    assert message["Subject"] == "Welcome to PPRNet Research Digest"


def set_language(nl: Newsletter, email: str, language: str) -> None:
    with nl.session() as session:
        subscriber = session.scalar(select(Subscriber).where(Subscriber.email == email))
        assert subscriber is not None
        subscriber.language = language


@pytest.fixture
def bilingual(make_newsletter, smtp_server: SMTPCatcher) -> Newsletter:  # type: ignore[no-untyped-def]
    nl: Newsletter = make_newsletter()
    load_month(nl)
    set_language(nl, "ada@example.org", "fr")
    set_language(nl, "bob@example.org", "fr")
    return nl


@pytest.mark.slow
def test_a_real_send_speaks_each_readers_language(bilingual: Newsletter,
                                                  smtp_server: SMTPCatcher) -> None:
    """Ada (all topics) and Bob (alliance) read French, Cy (empathy, training) English; one
    render per (variant, language): ada's, bob's and cy's variants are all different."""
    report = send_edition(bilingual, MONTH)
    by_recipient = {m.recipients[0]: parse(m.data) for m in smtp_server.messages}
    assert set(by_recipient) == {"ada@example.org", "bob@example.org", "cy@example.org"}
    for email, language in (("ada@example.org", "fr"), ("bob@example.org", "fr"),
                            ("cy@example.org", "en")):
        message = by_recipient[email]
        html, text = part(message, "html"), part(message, "plain")
        assert message["Content-Language"] == language, email
        assert f'<html lang="{language}"' in html, email
        chrome = "Implications pour la pratique" if language == "fr" else "Practice Implications"
        assert chrome in html, email
        assert ("Se désabonner :" if language == "fr" else "Unsubscribe:") in text, email
    assert by_recipient["ada@example.org"]["Subject"] == "3 résumés de recherche · janvier 2015"
    assert by_recipient["cy@example.org"]["Subject"] == "2 research summaries · January 2015"
    assert report.variants_rendered == 3


@pytest.mark.slow
def test_same_variant_two_languages_renders_twice_and_only_twice(
        make_newsletter, smtp_server: SMTPCatcher) -> None:  # type: ignore[no-untyped-def]
    nl: Newsletter = make_newsletter()
    audience = tuple((f"Reader {i}", f"r{i}@example.org", None) for i in range(6))
    load_month(nl, audience)
    for i in range(3):
        set_language(nl, f"r{i}@example.org", "fr")
    report = send_edition(nl, MONTH)
    assert report.sent == 6 and report.variants_rendered == 2
    languages = sorted(parse(m.data)["Content-Language"] for m in smtp_server.messages)
    assert languages == ["en"] * 3 + ["fr"] * 3


@pytest.mark.slow
def test_test_copy_takes_a_language(bilingual: Newsletter, smtp_server: SMTPCatcher) -> None:
    key = send_test_copy(bilingual, MONTH, "tester@example.org", language="fr")
    message = parse(smtp_server.messages[-1].data)
    assert key.startswith("fr:")
    assert message["Subject"] == "[TEST] 3 résumés de recherche · janvier 2015"
    assert message["Content-Language"] == "fr"


@pytest.mark.slow
def test_a_stray_stored_language_gets_the_default_chrome(bilingual: Newsletter,
                                                         smtp_server: SMTPCatcher) -> None:
    """A language the chrome does not speak (a hand-edited row) must not stop the send."""
    set_language(bilingual, "cy@example.org", "de")
    report = send_edition(bilingual, MONTH)
    assert report.sent == 3
    cy = next(parse(m.data) for m in smtp_server.messages if m.recipients == ("cy@example.org",))
    assert cy["Content-Language"] == "en" and "Practice Implications" in part(cy, "html")
