"""The legacy blog's archive: the parser (pure) field by field, then the import into a real store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from newsletter.archive.importer import external_id, import_archive
from newsletter.archive.legacy import (
    CitationProblem,
    infer_research_type,
    parse_archive,
    parse_citation,
    plain_to_markdown,
)
from newsletter.archive.tagging import list_untagged, tag_summary
from newsletter.content.models import Edition, EditionStatus, Summary, SummaryStatus
from newsletter.content.store import to_item, upsert_summary
from newsletter.content.summary_file import SummaryDraft
from newsletter.context import Newsletter
from newsletter.domain import Citation
from newsletter.errors import ContentErrors
from newsletter.markdown import markdown_to_text, render_markdown

from .builders import ARCHIVE_SAMPLE
from .conftest import RunCli

SAMPLE = ARCHIVE_SAMPLE
HANDBOOK = "Bergin and Garfield’s Handbook of Psychotherapy and Behavior Change"
needs_sample = pytest.mark.skipif(
    not SAMPLE.is_file(), reason=f"the legacy archive sample {SAMPLE} is absent (it sits beside "
    "the checkout in ../shared/seed/)")

# (month, headline, citation, research type, has an editorial note), in file order.
SAMPLE_POSTS = [
    ("2015-01", "Methods of Repairing Alliance Ruptures",
     Citation(authors=("Safran, J. D.", "Kraus, J."), year=2014,
              title="Alliance ruptures, impasses and enactments: A relational perspective",
              source="Psychotherapy", volume="51", pages="381-387"), "review", False),
    ("2014-11", "Transference in Psychotherapy: A Review of the Research",
     Citation(authors=("Hoglend, P.",), year=2014,
              title="Exploration of the patient-therapist relationship in psychotherapy",
              source="American Journal of Psychiatry", volume="171", pages="1056-1066"),
     "review", False),
    ("2014-08", "Are Therapists or Clients Most Responsible for the Therapeutic "
                "Alliance-Outcome Relationship?",
     Citation(authors=("Del Re, A. C.", "Fluckiger, C.", "Horvath, A. O.", "Symonds, D.",
                       "Wampold, B. E."), year=2012,
              title="Therapist effects in the therapeutic alliance-outcome relationship: "
                    "A restricted-maximum likelihood meta-analysis",
              source="Clinical Psychology Review", volume="32", pages="642-649"),
     "meta-analysis", False),
    ("2014-07", "Is There Such a Thing as Expertise in Psychotherapy?",
     Citation(authors=("Tracey, T. J. G.", "Wampold, B. E.", "Lichtenberg, J. W.",
                       "Goodyear, R. K."), year=2014,
              title="Expertise in psychotherapy: An elusive goal?", source="American Psychologist",
              volume="69", pages="218-229"), "other", False),
    ("2014-01", "Is Therapeutic Alliance Really That Important?",
     Citation(authors=("Crits-Christoph, P.", "Connolly Gibbons, M. B.", "Mukherjee, D."),
              year=2013, title="Psychotherapy process-outcome research", source=HANDBOOK,
              pages="298-340", editors=("Lambert, M. E.",), book_title=HANDBOOK, edition="6th",
              publisher="Wiley"), "book-chapter", True),
    ("2013-12", "How Much Do Psychotherapists Differ in Their Outcomes and Why Does this Matter?",
     Citation(authors=("Baldwin, S.", "Imel, Z. E."), year=2013, title="Therapist effects",
              source=HANDBOOK, pages="258-297", editors=("Lambert, M. E.",), book_title=HANDBOOK,
              edition="6th", publisher="Wiley"), "book-chapter", True),
]


@needs_sample
def test_the_sample_parses_as_six_posts_with_every_citation_fully_parsed() -> None:
    parsed = parse_archive(SAMPLE.read_text(encoding="utf-8"))
    assert parsed.problems == ()
    got = [(p.month, p.headline, p.citation, p.research_type, bool(p.note)) for p in parsed.posts]
    assert got == SAMPLE_POSTS
    chapter = parsed.posts[4]
    assert chapter.note[0].startswith("Handbook of Psychotherapy and Behavior Change: Starting in")
    assert chapter.body[0].startswith("In their chapter in the Handbook, Crits-Christoph")
    assert chapter.implications[0].startswith("Developing an early alliance with a client")
    assert chapter.citation.apa() == (
        "Crits-Christoph, P., Connolly Gibbons, M. B., & Mukherjee, D. (2013). Psychotherapy "
        f"process-outcome research. In M. E. Lambert (Ed.), {HANDBOOK} (6th ed., pp. 298-340). "
        "Wiley.")
    assert parsed.posts[3].citation.apa() == (
        "Tracey, T. J. G., Wampold, B. E., Lichtenberg, J. W., & Goodyear, R. K. (2014). "
        "Expertise in psychotherapy: An elusive goal? American Psychologist, 69, 218-229.")
    assert [p.line for p in parsed.posts] == [45, 51, 57, 63, 69, 76]


@needs_sample
def test_the_sample_imports_as_six_sent_months_and_twice_changes_nothing(
        newsletter: Newsletter) -> None:
    report = import_archive(newsletter, SAMPLE)
    assert (report.posts, report.summaries_added, report.editions_added) == (6, 6, 6)
    assert report.months == [month for month, *_ in SAMPLE_POSTS]
    assert report.problems == [] and report.untagged == 6
    assert [(i.research_type, i.reason) for i in report.inferred][:2] == [
        ("review", "the summary's first sentence says 'review'"),
        ("review", "the headline says 'review'")]
    before = _snapshot(newsletter)
    again = import_archive(newsletter, SAMPLE)
    assert (again.summaries_unchanged, again.editions_unchanged, again.changed) == (6, 6, False)
    assert again.inferred == []
    assert _snapshot(newsletter) == before
    with newsletter.session() as session:
        editions = session.scalars(select(Edition).order_by(Edition.month)).all()
        assert [(e.month, e.status, e.sent_at.isoformat(), len(e.items)) for e in editions][:2] == [
            ("2013-12", EditionStatus.SENT, "2013-12-01T00:00:00+00:00", 1),
            ("2014-01", EditionStatus.SENT, "2014-01-01T00:00:00+00:00", 1)]
        summary = session.scalars(select(Summary).where(Summary.month == "2014-01")).one()
        assert summary.external_id == "legacy:2014-01:is-therapeutic-alliance-really-that-important"
        assert summary.status is SummaryStatus.READY and summary.topics == []
        assert to_item(summary).citation == SAMPLE_POSTS[4][2]
        assert summary.note_md is not None and summary.note_md.startswith("Handbook of")
        assert editions[1].subject == "1 research summary · January 2014"


def _snapshot(nl: Newsletter) -> list[tuple[object, ...]]:
    with nl.session() as session:
        rows: list[tuple[object, ...]] = [
            (s.id, s.uid, s.headline, s.citation, s.body_md, s.implications_md, s.note_md,
             s.updated_at, s.research_type.slug, tuple(t.slug for t in s.topics))
            for s in session.scalars(select(Summary).order_by(Summary.id))]
        rows += [(e.id, e.uid, e.subject, e.status, e.sent_at, e.updated_at,
                  tuple(i.summary_id for i in e.items))
                 for e in session.scalars(select(Edition).order_by(Edition.id))]
    return rows


# --- every citation variant -------------------------------------------------------------------

JOURNAL = dict(title="Alliance ruptures", source="Psychotherapy")
CITATIONS = [
    ("Safran , J. D. & Kraus , J. (2014). Alliance ruptures. Psychotherapy, 51(3), 381-387. "
     "doi:10.1037/a0037815",
     Citation(authors=("Safran, J. D.", "Kraus, J."), year=2014, volume="51", issue="3",
              pages="381-387", doi="10.1037/a0037815", **JOURNAL), []),
    ("Safran, J.D., and Kraus, J. (2014a). Alliance ruptures. Psychotherapy, 51, 381–387. "
     "https://doi.org/10.1037/a0037815",
     Citation(authors=("Safran, J. D.", "Kraus, J."), year=2014, volume="51", pages="381-387",
              doi="10.1037/a0037815", **JOURNAL), []),
    ("Sartre, J.-P., de Jong, K., & O'Brien, M. (2019, March). Alliance ruptures. Psychotherapy, "
     "56, Article 12. Retrieved from https://example.org/paper",
     Citation(authors=("Sartre, J.-P.", "de Jong, K.", "O'Brien, M."), year=2019, volume="56",
              pages="Article 12", url="https://example.org/paper", **JOURNAL), []),
    ("American Psychological Association. (2012). Recognition of psychotherapy effectiveness. "
     "Psychotherapy, 50, e102.",
     Citation(authors=("American Psychological Association",), year=2012,
              title="Recognition of psychotherapy effectiveness", source="Psychotherapy",
              volume="50", pages="e102"), []),
    ("Wampold, B. E. (2015). How important are the common factors? An update. World Psychiatry, "
     "14(3), 270-277.",
     Citation(authors=("Wampold, B. E.",), year=2015,
              title="How important are the common factors? An update", source="World Psychiatry",
              volume="14", issue="3", pages="270-277"), []),
    ("Norcross, J. C. (2002). Empathy? Psychotherapy: Theory, Research, Practice, Training, 38, "
     "380-384.",
     Citation(authors=("Norcross, J. C.",), year=2002, title="Empathy?",
              source="Psychotherapy: Theory, Research, Practice, Training", volume="38",
              pages="380-384"), []),
    ("Lutz, W. (2020). Progress feedback. Psychotherapy Research. Advance online publication.",
     Citation(authors=("Lutz, W.",), year=2020, title="Progress feedback",
              source="Psychotherapy Research"),
     ["advance online publication: no volume or pages"]),
    ("Lutz, W. (2020). Progress feedback. Psychotherapy Research, 30(2).",
     Citation(authors=("Lutz, W.",), year=2020, title="Progress feedback",
              source="Psychotherapy Research", volume="30", issue="2"),
     ["no pages after the volume"]),
    ("Crits-Christoph, P., Connolly Gibbons, M.B., & Mukherjee, D. (2013). Psychotherapy "
     "process-outcome research. In M. J. Lambert (Ed.), Bergin and Garfield's handbook of "
     "psychotherapy and behavior change (6th ed., pp. 298–340). Wiley.",
     Citation(authors=("Crits-Christoph, P.", "Connolly Gibbons, M. B.", "Mukherjee, D."),
              year=2013, title="Psychotherapy process-outcome research",
              source="Bergin and Garfield's handbook of psychotherapy and behavior change",
              book_title="Bergin and Garfield's handbook of psychotherapy and behavior change",
              editors=("Lambert, M. J.",), edition="6th", pages="298-340", publisher="Wiley"), []),
    ("Orlinsky, D. E. (1994). Process and outcome. In A. E. Bergin & S. L. Garfield (Eds.), "
     "Handbook of psychotherapy (Vol. 2, pp. 270-376). New York, NY: Wiley. doi:10.1000/xyz",
     Citation(authors=("Orlinsky, D. E.",), year=1994, title="Process and outcome",
              source="Handbook of psychotherapy", book_title="Handbook of psychotherapy",
              editors=("Bergin, A. E.", "Garfield, S. L."), volume="2", pages="270-376",
              publisher="Wiley", doi="10.1000/xyz"), []),
    ("Hill, C. E. (2010). Qualitative studies. In Research in psychotherapy (pp. 1-10).",
     Citation(authors=("Hill, C. E.",), year=2010, title="Qualitative studies",
              source="Research in psychotherapy", book_title="Research in psychotherapy",
              pages="1-10"), ["no publisher after the book's pages"]),
]


@pytest.mark.parametrize(("text", "expected", "warnings"), CITATIONS,
                         ids=[c[0][:30] for c in CITATIONS])
def test_every_citation_variant_parses_into_exact_fields(
        text: str, expected: Citation, warnings: list[str]) -> None:
    assert parse_citation(text) == (expected, warnings)


@pytest.mark.parametrize(("text", "reason"), [
    ("Hoglend, P. 2014. Exploration. Journal, 1, 2-3.", "no year in parentheses"),
    ("Hoglend P. (2014). Exploration. Journal, 1, 2-3.", "cannot read the authors from 'Hoglend P.'"),
    ("Wampold, B. E. Imel, Z. E. (2015). Title. Journal, 1, 2-3.",
     "cannot read the authors from 'Wampold, B. E. Imel, Z. E.'"),
    ("Hoglend, P. (2014). Exploration of the relationship", "cannot tell the title from the source"),
    ("Hoglend, P. (1776). Exploration. Journal, 1, 2-3.", "the year 1776 is not between"),
    ("Hill, C. E. (2010). Title. In A. Editor (Ed.), Book (Vol. 2). Wiley.",
     "a book chapter needs 'In A. Editor (Ed.)"),
])
def test_unreadable_citations_say_why(text: str, reason: str) -> None:
    with pytest.raises(CitationProblem, match=reason.replace("(", r"\(").replace(")", r"\)")):
        parse_citation(text)


def test_apa_for_chapters_with_two_and_three_editors() -> None:
    chapter = Citation(authors=("Hill, C. E.", "Lambert, M. J."), year=2004, title="Methodology",
                       source="Handbook", book_title="Handbook",
                       editors=("Bergin, A. E.", "Garfield, S. L."), pages="84-135",
                       publisher="Wiley", doi="10.1/x")
    assert chapter.apa() == ("Hill, C. E., & Lambert, M. J. (2004). Methodology. In A. E. Bergin "
                             "& S. L. Garfield (Eds.), Handbook (pp. 84-135). Wiley. "
                             "https://doi.org/10.1/x")
    three = Citation(authors=("Hill, C. E.",), year=2004, title="Methodology?", source="Handbook",
                     book_title="Handbook", editors=("A, B.", "C, D.", "E, F."), edition="2nd")
    assert three.apa() == "Hill, C. E. (2004). Methodology? In B. A, D. C, & F. E (Eds.), Handbook (2nd ed.)."
    assert Citation(**{"authors": ["X, Y."], "year": 2000, "title": "T", "source": "S",
                       "editors": ["A, B."]}).editors == ("A, B.",)


def test_research_type_is_read_from_the_most_telling_words_first() -> None:
    article = Citation(authors=("X, Y.",), year=2000, title="A randomized trial", source="S")
    assert infer_research_type(article, "Headline", ["In this review, a meta-analysis..."]) == (
        "randomized-controlled-trial", "the article title says 'randomized'")
    plain = Citation(authors=("X, Y.",), year=2000, title="Alliance", source="S")
    assert infer_research_type(plain, "H", ["In this review. A meta-analysis showed."]) == (
        "review", "the summary's first sentence says 'review'")
    assert infer_research_type(plain, "H", ["First. Then a meta analysis."])[0] == "meta-analysis"
    assert infer_research_type(plain, "H", ["Nothing to see."])[0] == "other"


def test_plain_text_never_turns_into_markup() -> None:
    paragraphs = ["1. Not a list; *not* emphasis, _nor_ this, [a](https://x.org) & &amp; <b>",
                  "# not a heading", "- not a bullet", "> not a quote", "2014) also plain \\ "]
    md = plain_to_markdown(paragraphs)
    assert markdown_to_text(md, width=10**6).split("\n\n") == [p.rstrip() for p in paragraphs]
    html = str(render_markdown(md))
    for tag in ("<ol", "<ul", "<em", "<a ", "<h1", "<blockquote", "<b>"):
        assert tag not in html


# --- broken posts ---------------------------------------------------------------------------

PREAMBLE = """Blog
The PPRNet blog began in 2013.
Type of Research
Topics
- ALL Topics (clear)
- Empathy
"""
GOOD = """{month}
{headline}
Smith, A. B. (2014). A good title. Psychotherapy, 51, 1-10.
This meta-analysis summary of {headline} is fine.
Practice Implications
Do the thing.
"""


def _post(month: str, headline: str) -> str:
    return GOOD.format(month=month, headline=headline)


BROKEN = PREAMBLE + "".join([
    _post("March 2015", "Good Post One"),                        # lines 7-12
    "February 2015\nNo Citation Here\nA summary without a citation line.\n"
    "Practice Implications\nStill some.\n",                       # 13-17
    "January 2015\nNo Implications\nSmith, A. B. (2014). T. J, 1, 1-2.\nSummary.\n",  # 18-21
    _post("January 2015", "Good Post Three"),                     # 22-27
    "Janaury 2015\nGarbled Month\nSmith, A. B. (2014). T. J, 1, 1-2.\nSummary.\n"
    "Practice Implications\nImplication.\n",                      # 28-33
    "December 2014\nEmpty Parts\nSmith, A. B. (2014). T. J, 1, 1-2.\nPractice Implications\n",  # 28-31
    "November 2014\nBad Citation\nSmith, A. B. 2014. Title. J, 1, 1-2. (2014). X\nSummary.\n"
    "Practice Implications\nImplication.\n",                      # 32-37
    "October 2014\nOnline First\nLutz, W. (2020). Progress. Psychotherapy Research. Advance online "
    "publication.\nA randomized trial.\nPractice Implications\nImplication.\n",  # 38-43
    _post("October 2014", "Online First"),                        # 44-49
    _post("September 2014", "Good Post Two"),                     # 50-55
])


def test_broken_posts_are_reported_with_their_lines_and_the_rest_parse() -> None:
    parsed = parse_archive(BROKEN)
    assert [(p.line, p.reason, p.imported) for p in parsed.problems] == [
        (14, "no citation line like 'Author, A. (2014). Title. Journal, 51, 381-387.' after the "
             "headline", False),
        (18, "no 'Practice Implications' heading in this post", False),
        (28, "expected a month heading like 'January 2015', found 'Janaury 2015'; this post was "
             "skipped", False),
        (36, "the summary is empty: no paragraph between the citation and Practice Implications",
         False),
        (37, "the Practice Implications section is empty", False),
        (40, "citation: cannot read the authors from 'Smith, A. B. 2014. Title. J, 1, 1-2.': "
             "write them as 'Surname, A. B., & Other, C.'", False),
        (46, "citation: advance online publication: no volume or pages", True),
        (50, "the same headline as the post of line 44 in the same month; skipped", False),
    ]
    assert [(p.line, p.month, p.headline, p.research_type) for p in parsed.posts] == [
        (7, "2015-03", "Good Post One", "meta-analysis"),
        (22, "2015-01", "Good Post Three", "meta-analysis"),
        (44, "2014-10", "Online First", "randomized-controlled-trial"),
        (56, "2014-09", "Good Post Two", "meta-analysis")]


def test_a_missing_month_heading_or_control_characters_keep_posts_out() -> None:
    missing = PREAMBLE + _post("March 2015", "One") + _post("", "Two?").lstrip("\n")
    parsed = parse_archive(missing)
    assert [(p.line, p.reason) for p in parsed.problems] == [
        (14, "another citation line in the post of line 7: is a month heading missing or garbled "
             "above it?"),
        (16, "a second 'Practice Implications' heading in the post of line 7: is the next post's "
             "month heading missing?")]
    assert parsed.posts == ()
    run_together = PREAMBLE + _post("March 2015", "One").replace("Practice Implications\n", "") + (
        _post("Marhc 2015", "Two"))
    assert [(p.line, p.reason) for p in parse_archive(run_together).problems] == [
        (14, "another citation line in the post of line 7: is a month heading missing or garbled "
             "above it?")]
    control = parse_archive(PREAMBLE + _post("March 2015", "Bell\x07"))
    assert [(p.line, p.reason) for p in control.problems][0] == (
        8, "contains the control character U+0007")
    assert parse_archive("Just a page\nwith no posts\n").problems[0].reason.startswith(
        "no posts found")


def test_import_keeps_good_posts_and_reports_the_rest(newsletter: Newsletter,
                                                      tmp_path: Path) -> None:
    path = tmp_path / "archive.txt"
    path.write_text(BROKEN, encoding="utf-8")
    report = import_archive(newsletter, path)
    assert (report.posts, report.summaries_added, report.editions_added) == (4, 4, 4)
    assert len(report.skipped) == 7 and len(report.problems) == 8
    assert import_archive(newsletter, path).changed is False


def test_reimport_keeps_tags_and_type_and_updates_changed_text(newsletter: Newsletter,
                                                               tmp_path: Path) -> None:
    path = tmp_path / "archive.txt"
    path.write_text(PREAMBLE + _post("March 2015", "One") + _post("February 2015", "Two"),
                    encoding="utf-8")
    import_archive(newsletter, path)
    with newsletter.session() as session:
        assert [s.headline for s in list_untagged(session)] == ["One", "Two"]
        tag_summary(session, 1, ["empathy", "training"], research_type="review")
        tag_summary(session, 1, ["empathy"])
        with pytest.raises(ContentErrors, match="unknown topic 'empaty'; did you mean: empathy"):
            tag_summary(session, 2, ["empaty"])
    path.write_text(PREAMBLE + _post("March 2015", "One").replace("is fine", "is better")
                    + _post("February 2015", "Two") + _post("January 2015", "Three"),
                    encoding="utf-8")
    report = import_archive(newsletter, path)
    assert (report.summaries_added, report.summaries_updated, report.summaries_unchanged) == (
        1, 1, 1)
    with newsletter.session() as session:
        one = session.get(Summary, 1)
        assert one is not None and "is better" in one.body_md
        assert [t.slug for t in one.topics] == ["empathy", "training"]
        assert one.research_type.slug == "review"
        assert [s.headline for s in list_untagged(session)] == ["Two", "Three"]


def test_import_leaves_hand_made_summaries_and_unsent_editions_alone(newsletter: Newsletter,
                                                                   tmp_path: Path) -> None:
    from newsletter.content.store import assemble_edition
    citation = Citation(authors=("Smith, A. B.",), year=2014, title="T", source="J")
    with newsletter.session() as session:
        for headline in ("Hand Made", "Other"):
            upsert_summary(session, SummaryDraft(
                source="x.md", id=None, month="2015-03", headline=headline, citation=citation,
                topics=("empathy",), research_type="review", note_md=None, body_md="B",
                implications_md="I"))
        assemble_edition(session, "2015-03")
    path = tmp_path / "archive.txt"
    path.write_text(PREAMBLE + _post("March 2015", "Hand Made") + _post("March 2015", "New"),
                    encoding="utf-8")
    report = import_archive(newsletter, path)
    assert [(p.line, p.reason, p.imported) for p in report.problems] == [
        (7, "summary #1 of 2015-03 already has this headline and was not imported from this "
            "archive; left as it is", False),
        (13, "the 2015-03 edition already exists and is draft; the imported posts were not added "
             "to it", True)]
    with newsletter.session() as session:
        edition = session.scalars(select(Edition)).one()
        assert edition.status is EditionStatus.DRAFT and len(edition.items) == 2


def test_external_id_fits_its_column() -> None:
    parsed = parse_archive(PREAMBLE + _post("March 2015", "Long " * 50))
    assert len(external_id(parsed.posts[0])) <= 100


# --- the commands ---------------------------------------------------------------------------

@pytest.fixture
def run(run_cli: RunCli) -> Iterator[RunCli]:
    """`run_cli` on a store `newsletter init` has made, with the archive commands attached for this
    test only, so that the CLI reference check in test_cli.py sees exactly what `newsletter.cli`
    itself registers."""
    from newsletter.cli import cli
    from newsletter.cli.content import summary
    saved = dict(cli.commands), dict(summary.commands)
    from newsletter.cli import archive
    cli.add_command(archive.import_archive_command)
    cli.add_command(archive.archive_group)
    summary.add_command(archive.summary_tag)
    summary.add_command(archive.summary_untagged)
    run_cli("init")
    yield run_cli
    for group, commands in zip((cli, summary), saved, strict=True):
        group.commands.clear()
        group.commands.update(commands)


def test_the_archive_commands_have_help_with_an_example(run) -> None:  # type: ignore[no-untyped-def]
    for args in (["import-archive"], ["archive", "build"], ["summary", "tag"],
                 ["summary", "untagged"]):
        help_text = run(*args, "--help").stdout
        assert "Example:" in help_text and "newsletter " + " ".join(args) in help_text


@needs_sample
def test_import_archive_command_reports_and_is_idempotent(run) -> None:  # type: ignore[no-untyped-def]
    first = run("import-archive", str(SAMPLE)).stdout.splitlines()
    assert first[:3] == [f"Read 6 posts in 6 months from {SAMPLE}.",
                         "Summaries: 6 added, 0 updated, 0 unchanged.",
                         "Sent editions: 6 added, 0 updated, 0 unchanged."]
    assert first[4] == ("  #1 2015-01 review: Methods of Repairing Alliance Ruptures (the summary's "
                        "first sentence says 'review')")
    assert first[-1] == ("6 summaries without topics: list them with `newsletter summary "
                         "untagged`, tag with `newsletter summary tag ID TOPIC...`.")
    assert run("import-archive", str(SAMPLE)).stdout.splitlines()[1:3] == [
        "Summaries: 0 added, 0 updated, 6 unchanged.",
        "Sent editions: 0 added, 0 updated, 6 unchanged."]
    assert run("summary", "untagged").stdout.splitlines()[0] == (
        "2015-01  #1    Methods of Repairing Alliance Ruptures  [review]")
    tagged = run("summary", "tag", "4", "therapist-factors", "training", "--type", "review")
    assert tagged.stdout == ("#4 2014-07 Is There Such a Thing as Expertise in Psychotherapy?: "
                             "therapist-factors, training [review]\n")
    failed = run("summary", "tag", "4", "trainng", code=1)
    assert failed.stderr == "Error: topics: unknown topic 'trainng'; did you mean: training?\n"
    import json
    listed = json.loads(run("summary", "untagged", "--json").stdout)
    assert [row["id"] for row in listed] == [1, 2, 3, 5, 6]


def test_import_archive_command_exits_1_after_importing_the_good_posts(  # type: ignore[no-untyped-def]
        run, tmp_path: Path) -> None:
    path = tmp_path / "archive.txt"
    path.write_text(BROKEN, encoding="utf-8")
    result = run("import-archive", str(path), code=1)
    assert result.stdout.splitlines()[:2] == [f"Read 4 posts in 4 months from {path}.",
                                              "Summaries: 4 added, 0 updated, 0 unchanged."]
    errors = result.stderr.splitlines()
    assert errors[0] == (f"Error: {path}:14: no citation line like 'Author, A. (2014). Title. "
                         "Journal, 51, 381-387.' after the headline")
    assert errors[6] == (f"Warning: {path}:46: citation: advance online publication: no volume "
                         "or pages")
    assert len(errors) == 8
