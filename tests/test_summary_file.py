"""Summary files: every field parsed exactly, every problem located by source, line and field."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from newsletter.content.store import list_summaries, to_item
from newsletter.content.summary_file import (
    EXAMPLES_DIR,
    SummaryDraft,
    format_summary,
    parse_summary,
    read_summary_file,
)
from newsletter.context import Newsletter
from newsletter.domain import Branding, Citation
from newsletter.errors import ContentError, ContentErrors
from newsletter.mail.render import Renderer
from newsletter.paths import config_dir

from .conftest import RunCli, make_config


def _slugs(name: str, table: str) -> list[str]:
    return [entry["slug"] for entry in tomllib.loads((config_dir() / name).read_text())[table]]


TOPICS = _slugs("topics.toml", "topic")
RESEARCH_TYPES = _slugs("research_types.toml", "research_type")

VALID = """\
---
id: legacy-2015-01
month: 2015-01
status: draft
headline: Methods of Repairing Alliance Ruptures
citation:
  authors:
    - Safran, J. D.
    - Kraus, J.
  year: 2014
  title: "Alliance ruptures, impasses, and enactments: A relational perspective"
  source: Psychotherapy
  volume: 51
  issue: 3
  pages: 381-387
  doi: https://doi.org/10.1037/a0036815
  url: https://example.org/article?id=1
topics:
  - alliance-and-therapeutic-relationship
  - training
  - alliance-and-therapeutic-relationship
research_type: review
note: |
  Starting this month I review one *Handbook* chapter a month.

  A second paragraph.
---

In this clinically oriented review, Safran and Kraus discuss alliance ruptures.

Ruptures may occur in half of therapy cases.

## Practice Implications

Alliance ruptures can range in intensity from minor tensions to major rifts.
"""

EXPECTED = SummaryDraft(
    source="2015-01-ruptures.md",
    id="legacy-2015-01",
    month="2015-01",
    headline="Methods of Repairing Alliance Ruptures",
    citation=Citation(
        authors=("Safran, J. D.", "Kraus, J."), year=2014,
        title="Alliance ruptures, impasses, and enactments: A relational perspective",
        source="Psychotherapy", volume="51", issue="3", pages="381-387", doi="10.1037/a0036815",
        url="https://example.org/article?id=1"),
    topics=("alliance-and-therapeutic-relationship", "training"),
    research_type="review",
    note_md="Starting this month I review one *Handbook* chapter a month.\n\nA second paragraph.",
    body_md="In this clinically oriented review, Safran and Kraus discuss alliance ruptures.\n\n"
            "Ruptures may occur in half of therapy cases.",
    implications_md="Alliance ruptures can range in intensity from minor tensions to major rifts.",
    status="draft",
)

MINIMAL = """\
---
month: '2014-11'
headline: Transference in Psychotherapy
citation:
  authors: ["Hoglend, P."]
  year: 2014
  title: Exploration of the patient-therapist relationship in psychotherapy
  source: American Journal of Psychiatry
topics: [transference-and-countertransference]
research_type: review
---
Hoglend reviews research on transference.
# PRACTICE IMPLICATIONS
Transference work is an active ingredient.
"""


def parse(text: str, source: str = "2015-01-ruptures.md") -> SummaryDraft:
    return parse_summary(text, source, topics=TOPICS, research_types=RESEARCH_TYPES)


def problems(text: str) -> list[tuple[int | None, str | None, str]]:
    """(line, field, message) of every error, after checking each names the file."""
    with pytest.raises(ContentErrors) as caught:
        parse(text, "bad.md")
    assert all(error.source == "bad.md" for error in caught.value.errors)
    return [(error.line, error.field, error.reason) for error in caught.value.errors]


def located(text: str) -> list[tuple[int | None, str | None]]:
    return [(line, field) for line, field, _ in problems(text)]


def edit(old: str, new: str, text: str = VALID) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def test_every_field_is_parsed_exactly() -> None:
    assert parse(VALID) == EXPECTED


def test_optional_fields_default_and_headings_vary() -> None:
    draft = parse(MINIMAL, "m.md")
    assert draft == SummaryDraft(
        source="m.md", id=None, month="2014-11", headline="Transference in Psychotherapy",
        citation=Citation(
            authors=("Hoglend, P.",), year=2014, source="American Journal of Psychiatry",
            title="Exploration of the patient-therapist relationship in psychotherapy"),
        topics=("transference-and-countertransference",), research_type="review", note_md=None,
        body_md="Hoglend reviews research on transference.",
        implications_md="Transference work is an active ingredient.", status="ready")
    assert problems(edit('["Hoglend, P."]', "[Hoglend, P.]", MINIMAL)) == [
        (5, "citation.authors[1]", "'P.' is only initials: put each author in quotes, "
                                   '["Hoglend, P."], or on its own \'- \' line')]
    for heading in ("### practice implications", "## Practice Implications ##",
                    "   ## Practice  Implications"):
        assert parse(edit("# PRACTICE IMPLICATIONS", heading, MINIMAL)).implications_md


def test_yaml_scalars_stay_text_as_written() -> None:
    text = edit("headline: Methods of Repairing Alliance Ruptures", "headline: 1984")
    draft = parse(edit("  issue: 3\n", "  issue: 03\n", text))
    assert (draft.headline, draft.citation.issue) == ("1984", "03")
    assert parse(edit("doi: https://doi.org/10.1037", "doi: doi:10.1037")).citation.doi == (
        "10.1037/a0036815")


def test_crlf_bom_and_lone_cr_parse_like_lf() -> None:
    assert parse("\ufeff" + VALID.replace("\n", "\r\n")) == EXPECTED
    assert parse(VALID.replace("\n", "\r")) == EXPECTED


def test_unknown_topic_and_research_type_suggest_the_nearest_slugs() -> None:
    text = edit("  - training\n", "  - alliance\n", edit("research_type: review",
                                                         "research_type: meta"))
    assert problems(text) == [
        (20, "topics[1]", "unknown topic 'alliance'; did you mean: "
                          "alliance-and-therapeutic-relationship?"),
        (22, "research_type", "unknown research type 'meta'; did you mean: meta-analysis?"),
    ]
    assert problems(edit("  - training\n", "  - Empathy\n"))[0][2] == (
        "unknown topic 'Empathy'; did you mean: empathy?")
    assert problems(edit("research_type: review", "research_type: rct"))[0][2] == (
        "unknown research type 'rct'; valid: book-chapter, meta-analysis, naturalistic-study, "
        "other, practice-based-study, qualitative-study, randomized-controlled-trial, review")


def test_month_must_be_year_and_month_not_a_date() -> None:
    assert problems(edit("month: 2015-01", "month: 2015-01-01")) == [
        (3, "month", "'2015-01-01' is a date: write only the year and month, as YYYY-MM "
                     "(e.g. month: 2015-01)")]
    for bad in ("2015-13", "'2015-1'", "201501", "January 2015", "1899-12", ""):
        assert located(edit("month: 2015-01", f"month: {bad}")) == [(3, "month")], bad


def test_year_must_be_a_number_in_range() -> None:
    for bad in ('"2014"', "1899", "2101", "true", "2014.0", "[2014]", "0x7DE"):
        assert located(edit("year: 2014", f"year: {bad}")) == [(10, "citation.year")], bad
    assert "without quotes" in problems(edit("year: 2014", 'year: "2014"'))[0][2]


def test_unknown_duplicate_and_missing_keys_are_errors() -> None:
    text = edit("status: draft", "satus: draft", edit("  source: Psychotherapy\n", ""))
    text = edit("research_type: review\n", "research_type: review\nheadline: Again\n", text)
    assert problems(text) == [
        (4, "satus", "unknown key 'satus'; did you mean: status?"),
        (6, "citation.source", "is required but missing (for a chapter in an edited book, "
                               "give book_title instead)"),
        (22, "headline", "duplicate key (first on line 5)"),
    ]
    assert located(edit("  year: 2014\n", "  year: 2014\n  yaer: 2014\n")) == [
        (11, "citation.yaer")]
    no_topics = edit("topics: [transference-and-countertransference]\n", "", MINIMAL)
    assert located(no_topics) == [(1, "topics")]


def test_single_line_fields_refuse_line_breaks_and_control_characters() -> None:
    text = edit("headline: Methods of Repairing Alliance Ruptures",
                'headline: "Methods\\r\\nBcc: victim@example.org"')
    text = edit("    - Kraus, J.", '    - "Kraus,\\tJ."', text)
    text = edit("  source: Psychotherapy", '  source: "Psycho\\u202Etherapy"', text)
    assert problems(text) == [
        (5, "headline", "must be a single line without control characters "
                        "(found U+000D at character 8)"),
        (9, "citation.authors[1]", "must be a single line without control characters "
                                   "(found U+0009 at character 7)"),
        (12, "citation.source", "must be a single line without control characters "
                                "(found U+202E at character 7)"),
    ]
    assert located(edit("id: legacy-2015-01", 'id: "a\\nb"')) == [(2, "id")]
    assert located(edit("  Starting this month", '  Start\x00ing this month')) == [(24, None)]


def test_field_lengths_are_capped() -> None:
    long = {"headline": "H" * 301, "title": "T" * 501, "author": "A" * 201}
    text = edit("headline: Methods of Repairing Alliance Ruptures", f"headline: {long['headline']}")
    text = edit('  title: "Alliance ruptures, impasses, and enactments: A relational perspective"',
                f"  title: {long['title']}", text)
    text = edit("    - Kraus, J.", f"    - {long['author']}", text)
    text = edit("A second paragraph.", "N" * 5000, text)
    assert problems(text) == [
        (5, "headline", "is 301 characters long; the limit is 300"),
        (9, "citation.authors[1]", "is 201 characters long; the limit is 200"),
        (11, "citation.title", "is 501 characters long; the limit is 500"),
        (23, "note", "is 5062 characters long; the limit is 5000"),
    ]
    assert parse(edit("headline: Methods of Repairing Alliance Ruptures", "headline: " + "H" * 300))
    authors = "".join(f"    - Author{i}, A.\n" for i in range(101))
    assert located(edit("    - Safran, J. D.\n    - Kraus, J.\n", authors)) == [
        (7, "citation.authors")]


def test_sections_are_capped_required_and_non_empty() -> None:
    body = "In this clinically oriented review, Safran and Kraus discuss alliance ruptures."
    assert located(edit(body, "B" * 50_001)) == [(28, "body")]
    implications = "Alliance ruptures can range in intensity from minor tensions to major rifts."
    long_implications = edit(implications, "I" * 50_001)
    assert located(long_implications) == [(33, "implications")]
    assert located(edit("## Practice Implications", "## Practice implication")) == [
        (28, "implications")]
    assert located(edit("#### Practice Implications", "x", edit(
        "## Practice Implications", "#### Practice Implications"))) == [(28, "implications")]
    no_body = VALID[:VALID.index("In this")] + VALID[VALID.index("## Practice"):]
    assert problems(no_body)[0][:2] == (28, "body")
    assert problems(VALID[:VALID.index("Alliance ruptures can")]) == [
        (33, "implications", "the Practice Implications section is empty")]


def test_citation_links_must_be_a_doi_and_an_http_url() -> None:
    text = edit("doi: https://doi.org/10.1037/a0036815", "doi: 1037/a0036815")
    text = edit("url: https://example.org/article?id=1", "url: javascript:alert(1)", text)
    assert located(text) == [(16, "citation.doi"), (17, "citation.url")]
    for bad in ("ftp://example.org/x", "https://", "https://exa mple.org", "http://[::1"):
        assert located(edit("url: https://example.org/article?id=1", f"url: '{bad}'")) == [
            (17, "citation.url")], bad


def test_every_problem_in_a_file_is_reported_at_once() -> None:
    text = """\
---
month: 2014-11
status: done
citation: Safran 2014
topics:
  - transference
headline: Transference in Psychotherapy
research_type: review
---
Hoglend reviews research on transference.
"""
    assert problems(text) == [
        (3, "status", "must be draft or ready, not 'done'"),
        (4, "citation", "must be indented key: value lines (authors:, year:, title:, source: ...)"),
        (6, "topics[0]", "unknown topic 'transference'; did you mean: "
                         "transference-and-countertransference?"),
        (10, "implications", "no '## Practice Implications' heading: add one after the summary; "
                             "the implications run from it to the end of the file"),
    ]


def test_front_matter_must_exist_close_and_be_a_mapping() -> None:
    assert problems("Hoglend reviews research.\n")[0][:2] == (1, None)
    assert problems("---\nmonth: 2015-01\n")[0][:2] == (1, None)
    assert problems("---\n- a\n- b\n---\nx\n## Practice Implications\ny\n") == [
        (1, None, "the front matter must be key: value lines, not a list")]
    assert problems("---\n---\nx\n## Practice Implications\ny\n") == [
        (1, None, "the front matter is empty")]
    assert problems(edit("headline: Methods", "headline: Methods: A Review of")) == [
        (5, None, "invalid YAML: mapping values are not allowed here "
                  "(put quotes around text that contains ': ')")]


@pytest.mark.parametrize("front, where", [
    ("month: &m 2015-01\nheadline: *m\n", (2, None)),
    ("month: !!binary aGVsbG8=\n", (2, "month")),
    ("month: !!python/object/apply:os.system ['true']\n", (2, "month")),
    ("month: " + "[" * 2000 + "]" * 2000 + "\n", (1, None)),
    ("month: " + "[" * 20 + "]" * 20 + "\n", (2, None)),
])
def test_yaml_tricks_are_refused(front: str, where: tuple[int, str | None]) -> None:
    assert where in located(f"---\n{front}---\nx\n## Practice Implications\ny\n")


def test_files_too_big_or_not_utf8_are_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.md"
    big.write_bytes(b"-" * (256 * 1024 + 1))
    with pytest.raises(ContentErrors) as caught:
        read_summary_file(big, topics=TOPICS, research_types=RESEARCH_TYPES)
    assert [(e.source, e.line) for e in caught.value.errors] == [(str(big), None)]
    assert "larger than 256 KB" in str(caught.value)
    latin1 = tmp_path / "latin1.md"
    latin1.write_bytes(VALID.replace("Kraus", "Krüs").encode("latin-1"))
    with pytest.raises(ContentErrors) as caught:
        read_summary_file(latin1, topics=TOPICS, research_types=RESEARCH_TYPES)
    error = caught.value.errors[0]
    assert (error.source, error.line, error.field) == (str(latin1), 9, None)
    assert error.reason == ("not UTF-8: byte 0xfc at byte offset 150; save the file with the UTF-8 "
                            "encoding")
    with pytest.raises(ContentErrors, match="larger than 256 KB"):
        parse("é" * (128 * 1024 + 1))


def test_read_summary_file_strips_the_bom_and_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "2015-01-ruptures.md"
    path.write_bytes(b"\xef\xbb\xbf" + VALID.encode())
    draft = read_summary_file(path, topics=TOPICS, research_types=RESEARCH_TYPES)
    assert draft == replace(EXPECTED, source=str(path))
    with pytest.raises(ContentError, match="cannot read the file"):
        read_summary_file(tmp_path / "missing.md", topics=TOPICS, research_types=RESEARCH_TYPES)


def _words(text: str) -> int:
    return len(text.split())


def test_the_shipped_examples_parse() -> None:
    drafts = {path.name: read_summary_file(path, topics=TOPICS, research_types=RESEARCH_TYPES)
              for path in sorted(EXAMPLES_DIR.glob("*.md"))}
    assert {name: (d.month, d.research_type, d.topics) for name, d in drafts.items()} == {
        "2026-10-alliance-meta-analysis.md": ("2026-10", "meta-analysis", (
            "alliance-and-therapeutic-relationship", "common-factors",
            "outcomes-and-deterioration")),
        "2026-10-dropout-meta-analysis.md": ("2026-10", "meta-analysis", (
            "attendance-attrition-and-drop-out", "client-factors", "therapist-factors")),
        "2026-10-progress-feedback-trial.md": ("2026-10", "randomized-controlled-trial", (
            "feedback-and-progress-monitoring", "outcomes-and-deterioration",
            "depression-and-depressive-symptoms", "anxiety-disorders")),
    }
    for name, draft in drafts.items():
        assert draft.id == name.removesuffix(".md") and draft.status == "ready"
        assert draft.citation.doi and draft.citation.volume and draft.citation.pages
        assert 180 <= _words(draft.body_md) <= 250 and 80 <= _words(draft.implications_md) <= 120


TRICKY = SummaryDraft(
    source="tricky.md", id="007", month="2099-12",
    headline="Yes: 'quotes', \"double\", #hash, - dash, & ampersand, * star, ü, 中文?",
    citation=Citation(authors=("- Lead, A.", "null", "O'Brien, B."), year=1900,
                      title="true", source="@source: {not a mapping}", volume="1.50",
                      issue="2015-01-01", pages="e12", doi="10.1000/x:y;z", url=None),
    topics=("empathy",), research_type="other",
    note_md="Line one:   \n  indented line\n\n---\n\n## Practice Implications inside a note",
    body_md="Body with trailing spaces   \nand a line of dashes\n\n---\n\n| a | b |",
    implications_md="Final.\n\n## Another heading\n\nMore text.", status="ready")


def test_format_summary_round_trips() -> None:
    drafts = [EXPECTED, parse(MINIMAL, "m.md"), TRICKY, parse(CHAPTER, "c.md")]
    drafts += [read_summary_file(path, topics=TOPICS, research_types=RESEARCH_TYPES)
               for path in sorted(EXAMPLES_DIR.glob("*.md"))]
    for draft in drafts:
        text = format_summary(draft)
        assert parse(text, draft.source) == draft, text
        assert format_summary(parse(text, draft.source)) == text


def test_format_summary_refuses_a_body_it_could_not_read_back() -> None:
    with pytest.raises(ValueError, match="Practice Implications heading"):
        format_summary(replace(EXPECTED, body_md="x\n\n## Practice Implications\n\ny"))


CHAPTER = """\
---
id: 2026-11-alliance-chapter
month: 2026-11
headline: What Does the Alliance Add? A Handbook Chapter Weighs the Evidence
citation:
  authors:
    - Flückiger, C.
    - Del Re, A. C.
    - Wampold, B. E.
    - Horvath, A. O.
  year: 2019
  title: Alliance in adult psychotherapy
  editors:
    - Norcross, J. C.
    - Lambert, M. J.
  book_title: Psychotherapy relationships that work
  edition: 3
  volume: 1
  pages: 24-78
  publisher: Oxford University Press
topics:
  - alliance-and-therapeutic-relationship
research_type: book-chapter
---

Flückiger and colleagues update their meta-analysis of the alliance for the handbook.

## Practice Implications

Attend to the alliance from the first session.
"""

CHAPTER_CITATION = Citation(
    authors=("Flückiger, C.", "Del Re, A. C.", "Wampold, B. E.", "Horvath, A. O."), year=2019,
    title="Alliance in adult psychotherapy", source="Psychotherapy relationships that work",
    volume="1", pages="24-78", editors=("Norcross, J. C.", "Lambert, M. J."),
    book_title="Psychotherapy relationships that work", edition="3rd",
    publisher="Oxford University Press")


def test_a_book_chapter_parses_to_every_citation_field_and_reads_as_apa() -> None:
    draft = parse(CHAPTER)
    assert (draft.citation, draft.research_type) == (CHAPTER_CITATION, "book-chapter")
    assert draft.citation.apa() == (
        "Flückiger, C., Del Re, A. C., Wampold, B. E., & Horvath, A. O. (2019). Alliance in adult "
        "psychotherapy. In J. C. Norcross & M. J. Lambert (Eds.), Psychotherapy relationships "
        "that work (3rd ed., Vol. 1, pp. 24-78). Oxford University Press.")


@pytest.mark.parametrize(("written", "stored"), [
    ("1", "1st"), ("2", "2nd"), ("'03'", "3rd"), ("4", "4th"), ("11", "11th"), ("12", "12th"),
    ("13", "13th"), ("21", "21st"), ("102", "102nd"), ("112", "112th"), ("2nd", "2nd"),
    ("Rev.", "Rev."), ("1000", "1000"), ("Edited", "Edited"),
])
def test_an_edition_number_becomes_an_ordinal(written: str, stored: str) -> None:
    assert parse(edit("edition: 3", f"edition: {written}", CHAPTER)).citation.edition == stored


@pytest.mark.parametrize("written", ["2nd ed.", "2nd ed", "3rd Edition", "ed."])
def test_an_edition_that_already_says_ed_is_refused(written: str) -> None:
    assert problems(edit("edition: 3", f"edition: {written}", CHAPTER)) == [
        (17, "citation.edition", "write only the edition, like 2nd: the reference adds ' ed.' "
                                 f"itself (got {written!r})")]


def test_source_and_book_title_together_say_which_to_use() -> None:
    text = edit("  book_title:", "  source: Psychotherapy\n  book_title:", CHAPTER)
    assert problems(text) == [
        (16, "citation.source", "give source (a journal) or book_title (the book a chapter is "
                                "in), not both: for a chapter, remove source")]


def test_book_fields_without_a_book_title_are_refused() -> None:
    journal = edit("  book_title: Psychotherapy relationships that work",
                   "  source: Psychotherapy", CHAPTER)
    assert problems(journal) == [
        (5, "citation.book_title", "is required when editors, edition or publisher is given: for "
                                   "a chapter, give the book's title as book_title instead of "
                                   "source; for a journal article, remove editors, edition and "
                                   "publisher")]
    neither = edit("  book_title: Psychotherapy relationships that work\n", "",
                   edit("  edition: 3\n", "", edit("  editors:\n    - Norcross, J. C.\n"
                                                   "    - Lambert, M. J.\n", "", CHAPTER)))
    assert problems(neither) == [
        (5, "citation.book_title", "is required when editors, edition or publisher is given: for "
                                   "a chapter, give the book's title as book_title; for a journal "
                                   "article, give the journal as source and remove publisher")]


def test_chapter_fields_are_checked_like_the_other_fields() -> None:
    text = edit("    - Norcross, J. C.", '    - "Norcross,\\tJ. C."', CHAPTER)
    text = edit("  book_title: Psychotherapy relationships that work", "  book_title: " + "B" * 501,
                text)
    text = edit("  edition: 3", "  edition: [3]", text)
    text = edit("  publisher: Oxford University Press", "  publisher: " + "P" * 201, text)
    assert problems(text) == [
        (14, "citation.editors[0]", "must be a single line without control characters "
                                    "(found U+0009 at character 10)"),
        (16, "citation.book_title", "is 501 characters long; the limit is 500"),
        (17, "citation.edition", "must be text, not a list"),
        (20, "citation.publisher", "is 201 characters long; the limit is 200"),
    ]
    editors = "  editors:\n    - Norcross, J. C.\n    - Lambert, M. J.\n"
    assert problems(edit(editors, "  editors: [Lambert, M. J.]\n", CHAPTER)) == [
        (13, "citation.editors[1]", "'M. J.' is only initials: put each editor in quotes, "
                                    '["Lambert, M. J."], or on its own \'- \' line')]
    assert problems(edit(editors, "  editors: Lambert, M. J.\n", CHAPTER)) == [
        (13, "citation.editors", "must be a list, one item per '- ' line "
                                 '(e.g. - "Lambert, M. J.")')]
    many = "  editors:\n" + "".join(f"    - Editor{i}, A.\n" for i in range(101))
    assert problems(edit(editors, many, CHAPTER)) == [
        (13, "citation.editors", "has 101 items; the limit is 100")]
    assert problems(edit("  book_title: Psychotherapy relationships that work",
                         "  book_title: ''", CHAPTER)) == [
        (16, "citation.book_title", "is empty")]


def test_html_in_chapter_fields_stays_text_and_renders_escaped() -> None:
    hostile = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    text = edit("  book_title: Psychotherapy relationships that work", f"  book_title: '{hostile}'",
                edit("  publisher: Oxford University Press", f"  publisher: '{hostile}'",
                     edit("    - Lambert, M. J.", f"    - '{hostile}'", CHAPTER)))
    citation = parse(text).citation
    assert (citation.book_title, citation.publisher, citation.editors[1]) == (hostile,) * 3
    env = Renderer(Branding("Org", "Address", "https://digest.example.org")).env
    html = env.from_string('{% from "_citation.html" import citation %}{{ citation(c) }}').render(
        c=citation)
    assert "<script" not in html and "<img" not in html and html.count("&lt;script&gt;") == 3


def _citation_block(text: str) -> str:
    return text[text.index("citation:\n"):text.index("topics:\n")]


def test_a_journal_article_is_written_without_chapter_fields() -> None:
    citation = _citation_block(format_summary(EXPECTED))
    assert [line.split(":")[0].strip() for line in citation.splitlines()
            if not line.startswith("    ")] == [
        "citation", "authors", "year", "title", "source", "volume", "issue", "pages", "doi", "url"]


def test_a_chapter_is_written_with_its_book_and_not_a_source() -> None:
    written = edit("  volume: 1", "  volume: '1'", edit("  edition: 3", "  edition: 3rd", CHAPTER))
    assert _citation_block(format_summary(parse(CHAPTER))) == _citation_block(written)


def test_summary_add_stores_a_chapter_with_its_book(database_url: str, tmp_path: Path,
                                                    run_cli: RunCli) -> None:
    path = tmp_path / "2026-11-alliance-chapter.md"
    path.write_text(CHAPTER, encoding="utf-8")
    run_cli("init")
    result = run_cli("summary", "add", str(path))
    assert result.stdout == ("added 2026-11 #1: What Does the Alliance Add? A Handbook Chapter "
                             f"Weighs the Evidence ({path})\n")
    nl = Newsletter.open(make_config(database_url))
    try:
        with nl.session() as session:
            stored = [to_item(summary).citation for summary in list_summaries(session)]
    finally:
        nl.close()
    assert stored == [CHAPTER_CITATION]


def test_an_unknown_citation_key_lists_the_chapter_keys_too() -> None:
    assert problems(edit("  edition: 3", "  editon: 3", CHAPTER)) == [
        (17, "citation.editon", "unknown key 'editon'; did you mean: edition, editors?")]
    assert problems(edit("  edition: 3", "  isbn: 3", CHAPTER)) == [
        (17, "citation.isbn", "unknown key 'isbn'; valid: authors, book_title, doi, edition, "
                              "editors, issue, pages, publisher, source, title, url, volume, year")]
