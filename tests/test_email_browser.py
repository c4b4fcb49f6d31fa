"""Every kind of email, in English and French, in Chromium's mobile emulation at 320, 375, 414
and 600 px: it never scrolls sideways, with its <style> block or without it (as the Gmail apps
show it for non-Google accounts), and axe-core finds nothing serious or critical, light or dark.

The messages are the real bytes the product sends, parsed with email.policy.default
(tests/email_support.py); axe-core is shipped in tests/assets/axe-core (npm axe-core 4.10.3).
"""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from .email_support import (
    AXE,
    CHROMIUM,
    CHROMIUM_ARGS,
    WIDTHS,
    axe_violations,
    every_email,
    mobile_context,
    needs_chromium,
    scroll_width,
    viewable_html,
    without_style,
)

pytestmark = [pytest.mark.browser, needs_chromium]
LANGUAGES = ("en", "fr")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def pages(browser: Browser) -> Iterator[dict[tuple[int, str], Page]]:
    """One emulated phone (or the 600 px desktop) per width and colour scheme, reused."""
    contexts = {(width, scheme): mobile_context(browser, width, scheme)
                for width in WIDTHS for scheme in ("light", "dark")}
    yield {key: context.new_page() for key, context in contexts.items()}
    for context in contexts.values():
        context.close()


@pytest.fixture(scope="module")
def emails() -> dict[str, dict[str, EmailMessage]]:
    return {language: every_email(language) for language in LANGUAGES}


KINDS = ("confirm", "welcome", "manage", "editor-note", "edition", "edition-long-topics")


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_no_email_scrolls_sideways(pages: dict[tuple[int, str], Page],
                                   emails: dict[str, dict[str, EmailMessage]],
                                   kind: str, language: str) -> None:
    html = viewable_html(emails[language][kind])
    assert "<style" in html or kind == "editor-note"
    wide = []
    for width in WIDTHS:
        page = pages[width, "light"]
        for styled, page_html in (("with <style>", html), ("without <style>", without_style(html))):
            if (measured := scroll_width(page, page_html)) > width:
                wide.append(f"{width} px {styled}: {measured} px wide")
        assert page.evaluate("window.innerWidth") == width
    assert wide == []


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_axe_finds_no_serious_violation(pages: dict[tuple[int, str], Page],
                                        emails: dict[str, dict[str, EmailMessage]],
                                        kind: str, language: str) -> None:
    html = viewable_html(emails[language][kind])
    found = []
    for (width, scheme), page in pages.items():
        assert page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches") == (scheme == "dark")
        found += [f"{width} px {scheme}: {v}" for v in axe_violations(page, html)]
    assert found == []


def test_every_email_has_a_labelled_article_landmark_and_its_language(
        emails: dict[str, dict[str, EmailMessage]]) -> None:
    for language in LANGUAGES:
        for kind in ("confirm", "welcome", "manage", "edition"):
            message = emails[language][kind]
            html = viewable_html(message)
            assert f'<html lang="{language}"' in html, kind
            assert '<div role="article" aria-roledescription="email" aria-label="' in html, kind
            assert message["Content-Language"] == language


def test_axe_can_fail(pages: dict[tuple[int, str], Page]) -> None:
    """The check has teeth: the old footer grey on its background is reported as serious."""
    page = pages[375, "light"]
    bad = ('<!DOCTYPE html><html lang="en"><head><title>t</title></head><body style="background:'
           '#eef1f4"><main><p style="color:#66768a;font-size:12px">footer</p></main></body></html>')
    assert [v["id"] for v in axe_violations(page, bad)] == ["color-contrast"]
    wide = '<!DOCTYPE html><html><body><table style="width:600px"><tr><td>x</td></tr></table></body></html>'
    assert scroll_width(page, wide) > 375
    assert AXE.stat().st_size > 100_000
