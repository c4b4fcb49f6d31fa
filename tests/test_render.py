"""Rendering: one inlined, safe, unclipped message per variant, markers where recipients differ."""

from __future__ import annotations

import dataclasses
import html as htmllib
import json
import os
import re
from pathlib import Path

import cssutils
import lxml.html
import pytest
from cssselect import GenericTranslator

from newsletter.domain import Branding, Citation, EditionContent, Named, SummaryItem
from newsletter.errors import RenderError
from newsletter.mail.render import PLACEHOLDERS, RenderedVariant, Renderer, check_rendered, clean_header
from newsletter.markdown import markdown_to_text, render_markdown, smart_quotes

GOLDEN = Path(__file__).parent / "golden"
BRANDING = Branding("Psychotherapy Practice Research Network (PPRNet)", "Ottawa, Ontario, Canada",
                    "https://pprnet.example.org", "PPRNet Research Digest")
HOSTILE = '<script>alert(1)</script><img src=x onerror="alert(2)">'


def load_edition() -> EditionContent:
    data = json.loads((GOLDEN / "edition-2015-01.json").read_text(encoding="utf-8"))
    items = tuple(SummaryItem(
        id=i["id"], uid=i["uid"], month=i["month"], headline=i["headline"],
        citation=Citation(**{**i["citation"], "authors": tuple(i["citation"]["authors"])}),
        body_md=i["body_md"], implications_md=i["implications_md"],
        topics=tuple(Named(*t) for t in i["topics"]), research_type=Named(*i["research_type"]),
        note_md=i["note_md"]) for i in data["items"])
    return EditionContent(month=data["month"], subject=data["subject"],
                          preheader=data["preheader"], items=items, intro_md=data["intro_md"])


@pytest.fixture(scope="module")
def edition() -> EditionContent:
    return load_edition()


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(BRANDING)


@pytest.fixture(scope="module")
def full(renderer: Renderer, edition: EditionContent) -> RenderedVariant:
    return renderer.render_variant(edition, (101, 102, 103))


def parse(html: str) -> lxml.html.HtmlElement:
    return lxml.html.document_fromstring(html)


def declared(style: str) -> set[str]:
    return {decl.split(":", 1)[0].strip().lower() for decl in style.split(";") if ":" in decl}


def source_rules(renderer: Renderer) -> list[tuple[str, set[str]]]:
    """(selector, properties) of every plain style rule in base.html, before inlining."""
    raw = renderer.env.get_template("email/base.html").render(
        subject="s", preheader="p", branding=BRANDING, recipient={}, language="en")
    css = parse(raw).xpath("//style")[0].text
    sheet = cssutils.parseString(css, validate=False)
    return [(selector.strip(), {p.name for p in rule.style})
            for rule in sheet if rule.type == rule.STYLE_RULE
            for selector in rule.selectorText.split(",")]


def test_every_class_rule_is_inlined(renderer: Renderer, full: RenderedVariant) -> None:
    root = parse(full.html)
    checked = 0
    for selector, properties in source_rules(renderer):
        for element in root.xpath(GenericTranslator().css_to_xpath(selector)):
            missing = properties - declared(element.get("style", ""))
            assert not missing, f"{selector}: <{element.tag}> lacks inline {missing}"
            checked += 1
    assert checked > 100


def test_practice_implications_box_has_inline_tint(full: RenderedVariant) -> None:
    boxes = parse(full.html).xpath(
        "//p[normalize-space()='Practice Implications']/ancestor::td[1]")
    assert len(boxes) == 3
    for box in boxes:
        style = box.get("style")
        assert re.search(r"background-color:\s*#[0-9a-f]{3,6}", style)
        assert re.search(r"border-left:\s*4px solid", style)
        assert box.get("bgcolor")


def test_media_rules_stay_in_head_and_win(full: RenderedVariant) -> None:
    root = parse(full.html)
    assert root.xpath("//body//style") == []
    [style] = root.xpath("/html/head/style")
    sheet = cssutils.parseString(style.text, validate=False)
    media = {rule.media.mediaText: rule for rule in sheet if rule.type == rule.MEDIA_RULE}
    assert set(media) == {"(max-width: 620px)", "(prefers-color-scheme: dark)"}
    assert [r for r in sheet if r.type == r.STYLE_RULE] == []
    for rule in media.values():
        priorities = {p.priority for r in rule.cssRules for p in r.style}
        assert priorities == {"important"}


def test_head_declares_email_basics(full: RenderedVariant) -> None:
    assert full.html.startswith("<!DOCTYPE html>")
    root = parse(full.html)
    assert root.get("lang") == "en"
    metas = {m.get("name"): m.get("content") for m in root.xpath("//meta[@name]")}
    assert metas["color-scheme"] == metas["supported-color-schemes"] == "light dark"
    assert "width=device-width" in metas["viewport"]
    assert root.xpath("//title")[0].text == full.subject
    assert all(t.get("role") == "presentation" for t in root.xpath("//table"))
    assert root.xpath("//img") == [] and root.xpath("//script") == []


def test_full_variant_is_sendable_and_small(full: RenderedVariant) -> None:
    assert check_rendered(full) == []
    assert len(full.html.encode()) < 60 * 1024


def hostile_edition(edition: EditionContent) -> EditionContent:
    citation = Citation(authors=(HOSTILE,), year=2014, title=HOSTILE, source=HOSTILE,
                        volume=HOSTILE, url="javascript:alert(3)")
    item = dataclasses.replace(
        edition.items[0], uid='x"><script>alert(4)</script>', headline=HOSTILE,
        citation=citation, body_md=HOSTILE + "\n\n[click](javascript:alert(5))",
        implications_md=HOSTILE, note_md=HOSTILE,
        topics=(Named("t", HOSTILE),), research_type=Named("r", HOSTILE))
    return dataclasses.replace(edition, items=(item,) + edition.items[1:], intro_md=HOSTILE,
                               subject=HOSTILE, preheader=HOSTILE)


@pytest.mark.parametrize("ids", [(101,), (102, 103)])
def test_hostile_content_comes_out_escaped(renderer: Renderer, edition: EditionContent,
                                           ids: tuple[int, ...]) -> None:
    rendered = renderer.render_variant(hostile_edition(edition), ids)
    root = parse(rendered.html)
    assert root.xpath("//script") == []
    assert root.xpath("//img") == []
    assert root.xpath("//@*[starts-with(name(), 'on')]") == []
    assert check_rendered(rendered) == []
    if ids == (101,):
        assert root.xpath("//h2")[0].text_content() == smart_quotes(HOSTILE)
        assert root.xpath("//a[text()='click']") == []


def test_only_safe_markdown_links_become_hrefs() -> None:
    md = ("[a](javascript:alert(1)) [b](JavaScript:alert(1)) <javascript:alert(1)> "
          "[c](data:text/html,x) [d](/relative) [e](vbscript:x) ![f](https://t.example/p.gif) "
          "[ok](https://example.org/a) <mailto:desk@example.org> [h](http://example.org)")
    root = parse(f"<div>{render_markdown(md)}</div>")
    assert root.xpath("//@href") == ["https://t.example/p.gif", "https://example.org/a",
                                     "mailto:desk@example.org", "http://example.org"]
    assert root.xpath("//img") == []


def test_raw_html_in_markdown_is_text() -> None:
    root = parse(f"<div>{render_markdown(HOSTILE)}</div>")
    assert root.xpath("//script | //img") == []
    assert root.text_content().strip() == smart_quotes(HOSTILE)


def test_subject_and_preheader_lose_control_characters(renderer: Renderer,
                                                       edition: EditionContent) -> None:
    nasty = dataclasses.replace(edition, subject="Digest\r\nBcc: all@example.org\x00\t  x",
                                preheader="one\ntwo\u2028three\u202e four")
    rendered = renderer.render_variant(nasty, (101,))
    assert rendered.subject == "Digest Bcc: all@example.org x"
    assert rendered.preheader == "one two three four"
    assert clean_header("  \r\n ") == ""


def h2_texts(html: str) -> list[str]:
    return [h.text_content() for h in parse(html).xpath("//h2")]


def text_headlines(text: str) -> list[str]:
    lines = text.splitlines()
    return [lines[i - 1] for i, line in enumerate(lines)
            if i and line and set(line) == {"="} and len(line) == len(lines[i - 1])]


def test_variant_has_requested_summaries_in_edition_order(renderer: Renderer,
                                                          edition: EditionContent) -> None:
    rendered = renderer.render_variant(edition, (103, 101))
    headlines = [edition.items[0].headline, edition.items[2].headline]
    assert h2_texts(rendered.html) == headlines
    assert text_headlines(rendered.text) == headlines
    other = edition.items[1]
    also = parse(rendered.html).xpath(
        "//p[normalize-space()='Also this month']/following-sibling::p/a")
    url = f"https://pprnet.example.org/archive/2015-01#{other.uid}"
    assert [(a.text_content(), a.get("href")) for a in also] == [(other.headline, url)]
    assert "  " + url in rendered.text.splitlines()


def test_full_variant_has_no_also_this_month(full: RenderedVariant,
                                             edition: EditionContent) -> None:
    assert h2_texts(full.html) == [item.headline for item in edition.items]
    assert parse(full.html).xpath("//p[normalize-space()='Also this month']") == []


def test_unknown_or_empty_variant_is_an_error(renderer: Renderer,
                                              edition: EditionContent) -> None:
    for ids in [(), (101, 999)]:
        with pytest.raises(RenderError, match="2015-01"):
            renderer.render_variant(edition, ids)


def test_markers_are_safe_unique_and_in_both_parts(renderer: Renderer,
                                                   edition: EditionContent,
                                                   full: RenderedVariant) -> None:
    assert set(full.markers) == set(PLACEHOLDERS)
    assert all(re.fullmatch(r"[a-z0-9]{20,}", m) for m in full.markers.values())
    assert len(set(full.markers.values())) == len(PLACEHOLDERS)
    for name in ("email", "topics", "unsubscribe_url", "preferences_url"):
        assert full.markers[name] in full.html and full.markers[name] in full.text
    again = renderer.render_variant(edition, (101, 102, 103))
    assert set(again.markers.values()).isdisjoint(full.markers.values())


def test_links_to_recipient_urls_are_exact_markers(full: RenderedVariant) -> None:
    root = parse(full.html)
    for name, label in [("unsubscribe_url", "Unsubscribe"),
                        ("preferences_url", "Change your topics")]:
        [link] = root.xpath(f"//a[@href='{full.markers[name]}']")
        assert link.text_content() == label


def neutral(r: RenderedVariant) -> tuple[str, str]:
    html, text = r.html, r.text
    for name, marker in r.markers.items():
        html, text = html.replace(marker, f"[{name}]"), text.replace(marker, f"[{name}]")
    return html, text


def test_markers_are_the_only_per_render_difference(renderer: Renderer,
                                                    edition: EditionContent,
                                                    full: RenderedVariant) -> None:
    assert neutral(renderer.render_variant(edition, (101, 102, 103))) == neutral(full)


def test_personalised_footer_reads_well(full: RenderedVariant) -> None:
    values = {"name": "", "email": "a&b@example.org", "topics": "Training",
              "unsubscribe_url": "https://x.example/u/T?a=1&b=2",
              "preferences_url": "https://x.example/p/T"}
    html = full.html
    for name, marker in full.markers.items():
        html = html.replace(marker, htmllib.escape(values[name]))
    root = parse(html)
    assert root.xpath("//a[normalize-space()='Unsubscribe']/@href") == [values["unsubscribe_url"]]
    footer = " ".join(p.text_content() for p in root.xpath("//td[@class='footer']/p"))
    assert ("You receive this because you subscribed to PPRNet Research Digest with "
            "a&b@example.org for: Training.") in footer
    assert BRANDING.postal_address in footer


def test_text_part_matches_golden(renderer: Renderer, edition: EditionContent) -> None:
    _, text = neutral(renderer.render_variant(edition, (101, 103)))
    golden = GOLDEN / "edition-2015-01-101-103.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


def test_text_part_fits_72_columns(full: RenderedVariant) -> None:
    markers = full.markers.values()
    long = [line for line in full.text.splitlines()
            if len(line) > 72 and "://" not in line and not any(m in line for m in markers)]
    assert long == []


def test_check_rendered_catches_relative_links_and_size() -> None:
    markers = {"unsubscribe_url": "nl0123456789abcdefunsubscribeurlx"}
    page = ('<html><body><a href="nl0123456789abcdefunsubscribeurlx">u</a>'
            '<a href="https://ok.example/">ok</a><a href="/archive/2015-01">rel</a>'
            '<img src="logo.png"><a href="javascript:x()">js</a></body></html>')
    assert check_rendered(RenderedVariant("s", "", page, "t", markers)) == [
        "link is not absolute http(s)/mailto: '/archive/2015-01'",
        "link is not absolute http(s)/mailto: 'logo.png'",
        "link is not absolute http(s)/mailto: 'javascript:x()'"]
    big = "<html><body><p>" + "\u00e9" * (51 * 1024) + "</p></body></html>"
    assert check_rendered(RenderedVariant("", "", big, "t", {})) == [
        "subject is empty",
        "HTML is 104481 bytes (102.0 KB): Gmail clips messages over 102 KB"]


def test_markdown_to_text_exact() -> None:
    md = ("Ruptures are *inevitable*; **repair** them. See [the review]"
          "(https://doi.org/10.1037/a0036815), <mailto:desk@example.org>, and\n"
          "[unsafe](javascript:alert(1)).\n\n"
          "- *Withdrawal* ruptures: the client falls silent, and the therapist explores "
          "interpersonal fears\n"
          "- Confrontation ruptures\n\n"
          "1. Notice\n2. Explore\n\n> Meta-communication is `key`.")
    assert markdown_to_text(md) == (
        "Ruptures are inevitable; repair them. See the review\n"
        "<https://doi.org/10.1037/a0036815>, <mailto:desk@example.org>, and\n"
        "[unsafe](javascript:alert(1)).\n"
        "\n"
        "- Withdrawal ruptures: the client falls silent, and the therapist\n"
        "  explores interpersonal fears\n"
        "- Confrontation ruptures\n"
        "\n"
        "1. Notice\n"
        "2. Explore\n"
        "\n"
        "> Meta-communication is key.")


def test_template_errors_name_the_template(tmp_path: Path, edition: EditionContent) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "edition.txt").write_text("{{ no_such_variable }}", encoding="utf-8")
    with pytest.raises(RenderError, match=r"email/edition\.txt.*no_such_variable"):
        Renderer(BRANDING, tmp_path).render_variant(edition, (101,))


def test_override_dir_shadows_shipped_templates(tmp_path: Path, edition: EditionContent) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "edition.txt").write_text(
        "{{ edition.title }}: {{ items|length }} for {{ recipient.email }}\n", encoding="utf-8")
    rendered = Renderer(BRANDING, str(tmp_path)).render_variant(edition, (101, 102))
    assert rendered.text == f"January 2015: 2 for {rendered.markers['email']}\n"
    assert h2_texts(rendered.html) == [i.headline for i in edition.items[:2]]


def test_layout_is_fluid_inline_and_fixed_only_for_outlook(full: RenderedVariant) -> None:
    """What holds when a client drops <style>: no inline fixed width, no nowrap; Outlook gets
    its 600 px table inside MSO conditionals; the preheader is hidden without a colour."""
    root = parse(full.html)
    (container,) = root.xpath("//table[contains(@class, 'container')]")
    assert declared(container.get("style", "")) >= {"width", "max-width"}
    assert "width:100%" in container.get("style").replace(" ", "")
    assert "max-width:600px" in container.get("style").replace(" ", "")
    styles = " ".join(root.xpath("//@style")).replace(" ", "")
    assert re.search(r"(?<![-\w])width:600px", styles) is None and "nowrap" not in styles
    assert full.html.count("<!--[if mso]>") == 2 and 'width="600"' in full.html
    (preheader,) = root.xpath("//div[@class='preheader']")
    hidden = preheader.get("style", "")
    assert "color" not in declared(hidden) and "display:none" in hidden.replace(" ", "")
    (article,) = root.xpath("//div[@role='article']")
    assert article.get("aria-label") == full.subject and article.get("lang") == "en"
