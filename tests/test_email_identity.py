"""Identity and polish of the emails: the masthead (network's name, optional logo), summary
bylines (file → store → email), typographic quotes, and plain-text parts that fit 80 columns."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from types import SimpleNamespace

import lxml.html
import pytest

from newsletter.content.assemble import for_variant
from newsletter.content.store import assemble_edition, edition_content, get_edition, upsert_summary
from newsletter.content.summary_file import format_summary, parse_summary
from newsletter.context import Newsletter
from newsletter.domain import Branding
from newsletter.errors import ContentErrors
from newsletter.mail.compose import Recipient, branding_for, compose_message, template_for
from newsletter.mail.links import LinkMaker
from newsletter.mail.render import Renderer
from newsletter.taxonomy import default_research_types, default_topics

from .builders import MONTH, SUMMARIES
from .email_support import BRANDING, config, every_email, parse, part
from .test_render import load_edition

LOGO = "https://digest.example.org/static/pprnet-logo.png"


def bare_url(line: str) -> bool:
    return re.fullmatch(r"\s*(<)?(https?://|mailto:)\S+(>)?\s*", line) is not None


@pytest.mark.slow
@pytest.mark.parametrize("language", ["en", "fr"])
def test_plain_text_parts_fit_80_columns(language: str) -> None:
    """Every kind, with a long name, address and (for the edition) a long list of topics; only
    a URL may stand alone on a longer line."""
    long_lines = {}
    for kind, message in every_email(language).items():
        text = part(message, "plain")
        long_lines[kind] = [line for line in text.splitlines() if len(line) >= 80 and not bare_url(line)]
    assert long_lines == {kind: [] for kind in long_lines}


@pytest.mark.slow
def test_a_long_choice_of_topics_is_wrapped_in_the_text_part() -> None:
    edition = load_edition()
    ids = (101, 102, 103)
    c = config()
    rendered = Renderer(BRANDING).render_variant(for_variant(edition, ids), ids)
    topics = ", ".join(t.name for t in default_topics()[:12])
    message = parse(compose_message(
        template_for(c, rendered, "101,102,103"), Recipient("u", "a@example.org", "A", topics),
        LinkMaker.for_config(c), date=datetime.now(UTC), message_id_prefix="t", delivery_id=1,
        envelope_from="d@example.org").data)
    text, html = part(message, "plain"), part(message, "html")
    assert [line for line in text.splitlines() if len(line) >= 80 and not bare_url(line)] == []
    assert " ".join(text.split()).count(" ".join(topics.split())) == 1
    assert topics in " ".join(html.split()), "the HTML part keeps it on one line"


@pytest.mark.slow
def test_typographic_quotes_in_prose_not_in_urls_or_code() -> None:
    item = dataclasses.replace(
        load_edition().items[0], headline='Does "Empathy" Predict the Client\'s Outcome?',
        body_md='The authors call it "responsiveness" (see [the paper](https://example.org/a"b)); '
                'it\'s `x = "y"` in code.')
    edition = dataclasses.replace(load_edition(), items=(item,))
    rendered = Renderer(BRANDING).render_variant(edition, (item.id,))
    root = lxml.html.document_fromstring(rendered.html)
    assert root.xpath("//h2")[0].text_content() == "Does “Empathy” Predict the Client’s Outcome?"
    prose = root.xpath("//td[contains(@class, 'item')]")[0].text_content()
    assert "“responsiveness”" in prose and "it’s" in prose and 'x = "y"' in prose
    assert root.xpath("//a[text()='the paper']/@href") == ["https://example.org/a%22b"]
    assert "Does “Empathy” Predict the Client’s Outcome?" in rendered.text
    assert "“responsiveness”" in rendered.text


def test_the_masthead_names_the_network_and_the_logo_is_off_by_default() -> None:
    rendered = Renderer(BRANDING).render_variant(load_edition(), (101,))
    masthead = lxml.html.document_fromstring(rendered.html).xpath("//td[contains(@class, 'masthead')]")[0]
    assert BRANDING.organisation in masthead.text_content()
    assert masthead.xpath(".//img") == []
    assert branding_for_config().extra == {}


def branding_for_config(**overrides: object) -> Branding:
    """`branding_for` reads only the settings of the Newsletter it is given."""
    return branding_for(SimpleNamespace(config=config(**overrides)))  # type: ignore[arg-type]


@pytest.mark.slow
def test_a_configured_logo_has_alt_text_and_is_not_needed_to_read() -> None:
    branding = dataclasses.replace(branding_for_config(logo_url=LOGO, logo_alt="PPRNet logo"),
                                   newsletter_name=BRANDING.newsletter_name)
    rendered = Renderer(branding).render_variant(load_edition(), (101,))
    root = lxml.html.document_fromstring(rendered.html)
    (logo,) = root.xpath("//img")
    assert (logo.get("src"), logo.get("alt")) == (LOGO, "PPRNet logo")
    masthead = root.xpath("//td[contains(@class, 'masthead')]")[0]
    assert "Psychotherapy Practice Research Network" in masthead.text_content()
    without_alt = Renderer(branding_for_config(logo_url=LOGO)).render_variant(load_edition(), (101,))
    assert lxml.html.document_fromstring(without_alt.html).xpath("//img/@alt") == [
        "Psychotherapy Practice Research Network"]
    hostile = Renderer(branding_for_config(logo_url="javascript:alert(1)")).render_variant(
        load_edition(), (101,))
    assert lxml.html.document_fromstring(hostile.html).xpath("//img") == []


BYLINE_FILE = """---
month: 2015-01
headline: Does Therapist Empathy Predict Outcome?
byline: Giorgio A. Tasca
citation:
  authors: ["Elliott, R."]
  year: 2018
  title: Therapist empathy and client outcome
  source: Psychotherapy
topics: [empathy]
research_type: meta-analysis
---

Empathy predicts outcome.

## Practice Implications

Train it.
"""


def parse_file(text: str):  # type: ignore[no-untyped-def]
    return parse_summary(text, "empathy.md", topics={t.slug for t in default_topics()},
                         research_types={r.slug for r in default_research_types()})


def test_a_byline_is_read_from_the_file_and_written_back() -> None:
    draft = parse_file(BYLINE_FILE)
    assert draft.byline == "Giorgio A. Tasca"
    assert parse_file(format_summary(draft)) == draft
    assert parse_file(BYLINE_FILE.replace("byline: Giorgio A. Tasca\n", "")).byline is None


def test_a_bad_byline_says_where() -> None:
    with pytest.raises(ContentErrors) as caught:
        parse_file(BYLINE_FILE.replace("Giorgio A. Tasca", "x" * 201))
    assert "byline" in str(caught.value) and "empathy.md" in str(caught.value)


@pytest.mark.slow
def test_the_byline_goes_through_the_store_into_both_languages(newsletter: Newsletter) -> None:
    with newsletter.session() as session:
        upsert_summary(session, dataclasses.replace(SUMMARIES[2], byline="Giorgio A. Tasca"))
        upsert_summary(session, SUMMARIES[0])
        assemble_edition(session, MONTH)
        content = edition_content(get_edition(session, MONTH))
    assert [item.byline for item in content.items] == ["Giorgio A. Tasca", None]
    ids = tuple(item.id for item in content.items)
    renderer = Renderer(BRANDING)
    en = renderer.render_variant(content, ids)
    fr = renderer.render_variant(content, ids, "fr")
    assert en.html.count("Summary by Giorgio A. Tasca") == 1
    assert "Summary by Giorgio A. Tasca" in en.text
    assert "Résumé par Giorgio A. Tasca" in fr.html and "Résumé par Giorgio A. Tasca" in fr.text
