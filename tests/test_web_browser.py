"""The public pages in headless Chromium (Playwright, Debian's chromium), against the app on a
real WSGI server and a real SMTP server on loopback: Tab stops on the signup and preferences
forms, a checked box in dark mode, the whole signup and preferences walk in French, and
axe-core on every page type (no serious or critical violation), light and dark.

Screenshots go to test-artifacts/web/; the README's French signup is docs/img/signup-fr.png.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from newsletter.archive.importer import import_archive
from newsletter.catcher import SMTPCatcher
from newsletter.context import Newsletter
from newsletter.tokens import Purpose
from subscribers.store import find

from .conftest import REPO, make_config
from .email_support import AXE, serious  # noqa: F401  (AXE: for the other browser tests)
from .live_site import Served
from .test_browser_journey import wait_for
from .test_search import SEED
from .test_web import sign

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = REPO / "test-artifacts" / "web"
README_SHOT = REPO / "docs" / "img" / "signup-fr.png"
MAX_TAB_STOPS = 12

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}")]


@pytest.fixture
def site(sqlite_url: str, smtp_server: SMTPCatcher) -> Iterator[tuple[str, Newsletter]]:
    served = Served.make()
    nl = Newsletter.open(make_config(sqlite_url, base_url=served.base, smtp_host=smtp_server.host,
                                     smtp_port=smtp_server.port))
    nl.init()
    assert not import_archive(nl, SEED).problems
    try:
        with served.serving(nl):  # testing: mail inline, so the test can read it at once
            yield served.base, nl
    finally:
        nl.close()


@pytest.fixture
def browser():  # type: ignore[no-untyped-def]
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


def tab_stops_to(page, selector: str) -> int:  # type: ignore[no-untyped-def]
    """Tab presses from the top of the page until `selector` has the focus."""
    page.evaluate("document.activeElement && document.activeElement.blur()")
    target = page.locator(selector)
    for presses in range(1, 200):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            return presses
    raise AssertionError(f"{selector} never got the focus")


def preferences_url(base: str, nl: Newsletter, email: str) -> str:
    with nl.session() as session:
        person = find(session, email)
        assert person is not None
        return f"{base}/preferences/{sign(Purpose.PREFERENCES, person.uid, nl)}"


def subscribe_somebody(base: str, nl: Newsletter, page, email: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/subscribe")
    page.fill("#email", email)
    page.click("button.primary")
    page.wait_for_url(re.compile(r".*/check-your-inbox.*"))


def test_the_topic_list_leaves_the_tab_order_while_all_topics_is_on(
        site: tuple[str, Newsletter], browser) -> None:  # type: ignore[no-untyped-def]
    base, nl = site
    page = browser.new_page()
    page.goto(f"{base}/subscribe")
    signup = tab_stops_to(page, "button.button.primary")
    page.reload()
    page.evaluate("document.querySelector('details.topic-picker').open = true")
    opened = tab_stops_to(page, "button.button.primary")  # open: the 36 boxes are back
    subscribe_somebody(base, nl, page, "tabs@example.org")
    page.goto(preferences_url(base, nl, "tabs@example.org"))
    preferences = tab_stops_to(page, "button[value=save]")
    print(f"Tab stops to Subscribe: {signup} (list opened: {opened}); "
          f"to Save in the preferences: {preferences}")
    assert signup <= MAX_TAB_STOPS and preferences <= MAX_TAB_STOPS
    assert opened >= signup + 36
    page.close()


def test_the_list_opens_without_javascript_and_ticking_chooses(
        site: tuple[str, Newsletter], browser) -> None:  # type: ignore[no-untyped-def]
    base, nl = site
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{base}/subscribe")
    assert not page.locator("#topic-empathy").is_visible()
    page.click("details.topic-picker > summary")
    page.check("#topic-empathy")
    page.fill("#email", "ticker@example.org")
    assert page.locator("#topics-all").is_checked()  # the radio untouched, as people do
    page.click("button.button.primary")
    page.wait_for_url(re.compile(r".*/check-your-inbox.*"))
    with nl.session() as session:
        person = find(session, "ticker@example.org")
        assert person is not None and person.topic_slugs == frozenset({"empathy"})
    context.close()


def _png_pixels(data: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """RGB pixels of an 8-bit, non-interlaced PNG (what Chromium's screenshots are)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    at, idat, width = 8, b"", 0
    height = channels = 0
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        body = data[at + 8:at + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0 and colour in (2, 6)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        at += 12 + length
    raw, stride, rows = zlib.decompress(idat), width * channels, []
    previous = bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            left = line[x - channels] if x >= channels else 0
            up, corner = previous[x], previous[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + left) & 255
            elif kind == 2:
                line[x] = (line[x] + up) & 255
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                best = min((abs(p - left), 0, left), (abs(p - up), 1, up), (abs(p - corner), 2, corner))
                line[x] = (line[x] + best[2]) & 255
        rows.append(bytes(line))
        previous = line
    pixels = [tuple(row[x * channels:x * channels + 3]) for row in rows for x in range(width)]
    return width, height, pixels  # type: ignore[return-value]


def _luminance(rgb: tuple[int, int, int]) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _filled_share(page, selector: str, background: tuple[int, int, int]) -> float:  # type: ignore[no-untyped-def]
    """The share of a control's pixels that stand out from the card at 3:1 or more."""
    _, _, pixels = _png_pixels(page.locator(selector).screenshot())
    return sum(contrast(p, background) >= 3 for p in pixels) / len(pixels)


def test_in_dark_mode_a_checked_control_is_fuller_than_an_unchecked_one(
        site: tuple[str, Newsletter], browser) -> None:  # type: ignore[no-untyped-def]
    base, _ = site
    context = browser.new_context(color_scheme="dark", device_scale_factor=2)
    page = context.new_page()
    page.goto(f"{base}/subscribe")
    page.click("details.topic-picker > summary")
    page.check("#topic-empathy")
    card = page.evaluate("getComputedStyle(document.querySelector('.card')).backgroundColor")
    background = tuple(int(n) for n in re.findall(r"\d+", card)[:3])
    checked_box = _filled_share(page, "#topic-empathy", background)  # type: ignore[arg-type]
    empty_box = _filled_share(page, "#topic-training", background)  # type: ignore[arg-type]
    checked_radio = _filled_share(page, "#topics-all", background)  # type: ignore[arg-type]
    empty_radio = _filled_share(page, "#topics-chosen", background)  # type: ignore[arg-type]
    print(f"dark mode, share of pixels at ≥3:1 on the card: box {checked_box:.2f} checked vs "
          f"{empty_box:.2f} empty; radio {checked_radio:.2f} vs {empty_radio:.2f}")
    assert checked_box > 2 * empty_box and checked_box > 0.5
    assert checked_radio > 1.5 * empty_radio
    context.close()


def test_signup_and_preferences_in_french(site: tuple[str, Newsletter], browser,  # type: ignore[no-untyped-def]
                                          smtp_server: SMTPCatcher) -> None:
    base, nl = site
    context = browser.new_context(locale="fr-CA", viewport={"width": 900, "height": 1000})
    page = context.new_page()
    page.goto(f"{base}/subscribe")
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.locator("h1").inner_text() == "S’abonner"
    assert page.locator("#language-fr").is_checked()
    SHOTS.mkdir(parents=True, exist_ok=True)
    README_SHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(README_SHOT), full_page=True)
    page.fill("#email", "Marie.Tremblay@clinique.example")
    page.fill("#name", "Marie Tremblay")
    page.click("details.topic-picker > summary")
    page.check("#topic-empathy")
    page.get_by_role("button", name="S’abonner").click()
    page.wait_for_url(re.compile(r".*/check-your-inbox.*"))
    assert page.locator("h1").inner_text() == "Vérifiez votre boîte de réception"
    item = wait_for(lambda: smtp_server.messages, "the confirmation email")[0]
    mail = message_from_bytes(item.data, policy=policy.default)
    text = mail.get_body(("plain",))
    assert text is not None
    link = re.search(rf"{re.escape(base)}/confirm/[A-Za-z0-9_.\-]+", text.get_content())
    assert link, text.get_content()
    page.goto(link.group(0))
    page.get_by_role("button", name="Confirmer mon abonnement").click()
    assert page.locator("h1").inner_text() == "Vous êtes abonné"
    page.get_by_role("link", name="Changer vos thèmes").click()
    assert page.locator("h1").inner_text() == "Vos préférences"
    assert page.locator("#topic-empathy").is_checked()
    page.check("#topic-training")
    page.get_by_role("button", name="Enregistrer les modifications").click()
    assert "Vos préférences sont enregistrées." in page.locator("[role=status]").inner_text()
    page.screenshot(path=str(SHOTS / "preferences-fr.png"), full_page=True)
    with nl.session() as session:
        person = find(session, "marie.tremblay@clinique.example")
        assert person is not None and person.language == "fr"
        assert person.topic_slugs == frozenset({"empathy", "training"})
    context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_nothing_serious_on_any_page(site: tuple[str, Newsletter], browser,  # type: ignore[no-untyped-def]
                                                scheme: str) -> None:
    base, nl = site
    context = browser.new_context(color_scheme=scheme, bypass_csp=True)  # axe is injected
    page = context.new_page()
    subscribe_somebody(base, nl, page, "axe@example.org")
    prefs = preferences_url(base, nl, "axe@example.org")
    with nl.session() as session:
        person = find(session, "axe@example.org")
        assert person is not None
        confirm = f"{base}/confirm/{sign(Purpose.CONFIRM, person.uid, nl)}"
        unsubscribe = f"{base}/u/{sign(Purpose.UNSUBSCRIBE, person.uid, nl)}"
    pages = [f"{base}/subscribe", f"{base}/subscribe?lang=fr", f"{base}/subscribe/check-your-inbox",
             confirm, prefs, f"{prefs}?lang=fr", unsubscribe, f"{base}/confirm/not-a-token",
             f"{base}/nope", f"{base}/", f"{base}/archive/2014-11/", f"{base}/archive/topics/",
             f"{base}/archive/search/?q=alliance+2014", f"{base}/archive/search/?q=zzzz",
             f"{base}/archive/nothing/", f"{base}/archive/?lang=fr"]
    page.goto(f"{base}/archive/")
    page.locator(".edition-row-items a").first.click()  # a summary's own page
    pages.append(page.url)
    found = {}
    for url in pages:
        page.goto(url)
        problems = serious(page)
        if problems:
            found[url] = problems
    page.goto(f"{base}/subscribe?lang=fr")
    page.click("details.topic-picker > summary")
    opened = serious(page)
    if opened:
        found["signup, list open"] = opened
    assert found == {}
    context.close()
