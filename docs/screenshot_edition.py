"""Screenshots of a rendered variant for the README and docs/rendering.md: desktop, a 375 px
phone (Chromium's mobile emulation) in light and dark, and the same phone in French.

Run from the checkout: `python docs/screenshot_edition.py` (needs `pip install playwright` and a
Chromium; set CHROMIUM to its path, default /usr/bin/chromium). Writes docs/img/edition*.png.
"""

from __future__ import annotations

import html
import json
import os
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletter.domain import Branding, Citation, EditionContent, Named, SummaryItem  # noqa: E402
from newsletter.mail.render import Renderer  # noqa: E402

SAMPLE = ROOT / "tests" / "golden" / "edition-2015-01.json"
OUT = ROOT / "docs" / "img"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RECIPIENT = {"name": "Ada", "email": "ada.lovelace@example.org",
             "topics": "Alliance and Therapeutic Relationship, Training",
             "unsubscribe_url": "https://pprnet.example.org/u/TOKEN",
             "preferences_url": "https://pprnet.example.org/p/TOKEN"}


def sample_edition() -> EditionContent:
    data = json.loads(SAMPLE.read_text(encoding="utf-8"))
    items = tuple(SummaryItem(
        id=i["id"], uid=i["uid"], month=i["month"], headline=i["headline"],
        citation=Citation(**{**i["citation"], "authors": tuple(i["citation"]["authors"])}),
        body_md=i["body_md"], implications_md=i["implications_md"],
        topics=tuple(Named(*t) for t in i["topics"]), research_type=Named(*i["research_type"]),
        note_md=i["note_md"]) for i in data["items"])
    return EditionContent(month=data["month"], subject=data["subject"],
                          preheader=data["preheader"], items=items, intro_md=data["intro_md"])


def personalised_html(language: str = "en") -> str:
    """What one recipient sees: the variant without the second summary, markers filled in."""
    branding = Branding("Psychotherapy Practice Research Network (PPRNet)",
                        "Ottawa, Ontario, Canada", "https://pprnet.example.org",
                        "PPRNet Research Digest")
    variant = Renderer(branding).render_variant(sample_edition(), (101, 103), language)
    page = variant.html
    for name, marker in variant.markers.items():
        page = page.replace(marker, html.escape(RECIPIENT[name]))
    return page


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    shots = [("edition.png", 700, "light", "en"),
             ("edition-dark.png", 700, "dark", "en"), ("edition-375-light.png", 375, "light", "en"),
             ("edition-375-dark.png", 375, "dark", "en"), ("edition-375-fr.png", 375, "light", "fr")]
    pages = {language: personalised_html(language) for language in ("en", "fr")}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                                    args=ARGS)
        for filename, width, scheme, language in shots:
            phone = width < 600
            context = browser.new_context(viewport={"width": width, "height": 900},
                                          is_mobile=phone, has_touch=phone,
                                          color_scheme=scheme)  # type: ignore[arg-type]
            page = context.new_page()
            page.set_content(pages[language], wait_until="load")
            page.screenshot(path=str(OUT / filename), full_page=True)
            context.close()
        browser.close()


if __name__ == "__main__":
    main()
