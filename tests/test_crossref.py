"""Crossref: DOI autofill against a loopback server speaking Crossref's documented JSON, every way
a lookup fails, hostile DOIs, and the retraction guard that blocks scheduling (both databases)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

import pytest

from newsletter.catcher import free_port
from newsletter.content.summary_file import SummaryDraft, format_summary, parse_summary
from newsletter.content.updates import acknowledge, check_updates
from newsletter.context import Newsletter
from newsletter.crossref import CrossrefClient, LookupFailure, Work, normalise_doi, sentence_case
from newsletter.domain import Citation
from newsletter.errors import ContentError, ContentErrors
from newsletter.schedule.editions import ScheduleError, schedule
from newsletter.taxonomy import research_type_slugs, topic_slugs
from tests.builders import MONTH, load_month
from tests.conftest import MakeNewsletter, RunCli
from tests.crossref_support import (
    ARTICLE_DOI,
    BROKEN,
    CHAPTER_DOI,
    CORRECTED_DOI,
    CORRECTION_DOI,
    FAILING,
    HUGE,
    NOT_FOUND,
    ORGANISATION_DOI,
    RETRACTION_DOI,
    SLOW,
    FakeCrossref,
    fake_crossref,
)

MAILTO = "editor@pprnet.example"


@pytest.fixture
def crossref() -> Iterator[FakeCrossref]:
    with fake_crossref() as fake:
        yield fake


def client(fake: FakeCrossref, **options: object) -> CrossrefClient:
    return CrossrefClient(fake.url, MAILTO, **options)  # type: ignore[arg-type]


def found(answer: Work | LookupFailure) -> Work:
    assert isinstance(answer, Work), answer
    return answer


def test_a_journal_article_fills_every_citation_field(crossref: FakeCrossref) -> None:
    work = found(client(crossref).work(f"https://doi.org/{ARTICLE_DOI.upper()}"))
    assert work.citation == Citation(
        authors=("Safran, J. D.", "Kraus, J."), year=2014,
        title="Alliance Ruptures, Impasses, and Enactments: A Relational Perspective",
        source="Psychotherapy", volume="51", issue="3", pages="381-387", doi=ARTICLE_DOI)
    assert work.type == "journal-article" and work.notes == ()
    assert work.title_needs_casing
    assert work.suggested_title == ("Alliance ruptures, impasses, and enactments: A relational "
                                    "perspective")
    request = crossref.requests[-1]
    assert request["path"] == "/works/" + quote(ARTICLE_DOI, safe="")
    assert request["query"] == {"mailto": [MAILTO]}
    assert MAILTO in request["user_agent"]


def test_a_book_chapter_fills_the_book_its_editors_and_publisher(crossref: FakeCrossref) -> None:
    work = found(client(crossref).work(f"doi:{CHAPTER_DOI}"))
    book = "Bergin and Garfield's Handbook of Psychotherapy and Behavior Change"
    assert work.citation == Citation(
        authors=("Hill, C. E.", "Knox, S."), year=2013,
        title="Research on Training in Psychotherapy", source=book, book_title=book,
        editors=("Lambert, M. J.",), edition="6th", publisher="Wiley", pages="298-340",
        doi=CHAPTER_DOI)
    assert work.isbn == ("9781118038208", "9781118781890")
    assert work.citation.apa().startswith("Hill, C. E., & Knox, S. (2013). Research on Training "
                                          "in Psychotherapy. In M. J. Lambert (Ed.), Bergin")


def test_an_organisation_author_and_markup_in_the_title(crossref: FakeCrossref) -> None:
    work = found(client(crossref).work(ORGANISATION_DOI))
    assert work.citation.authors == ("GBD 2019 Mental Disorders Collaborators",)
    assert work.citation.title == "Global burden of mental disorders & suicide"
    assert not work.title_needs_casing


@pytest.mark.parametrize("doi", [ARTICLE_DOI, CHAPTER_DOI, ORGANISATION_DOI])
def test_an_autofilled_citation_passes_the_file_loader(crossref: FakeCrossref, doi: str) -> None:
    citation = found(client(crossref).work(doi)).citation
    draft = SummaryDraft(source="x.md", id=None, month="2026-12", headline="A headline",
                         citation=citation, topics=("empathy",), research_type="review",
                         note_md=None, body_md="Body.", implications_md="Implications.")
    parsed = parse_summary(format_summary(draft), "x.md", topics={"empathy"},
                           research_types={"review"})
    assert parsed == draft


@pytest.mark.parametrize(("doi", "status", "words"), [
    (NOT_FOUND, 404, "does not know the DOI"),
    (FAILING, 500, "answered HTTP 500"),
    (BROKEN, 200, "not valid JSON"),
    (HUGE, 200, "larger than 2048 KB"),
])
def test_a_failed_lookup_is_a_clear_answer_not_an_exception(crossref: FakeCrossref, doi: str,
                                                            status: int, words: str) -> None:
    started = time.monotonic()
    answer = client(crossref).work(doi)
    assert isinstance(answer, LookupFailure)
    assert answer.status == status and words in answer.message and answer.doi == doi
    assert time.monotonic() - started < 2


def test_a_stalled_server_is_cut_off_at_the_timeout(crossref: FakeCrossref) -> None:
    started = time.monotonic()
    answer = client(crossref, timeout=0.5).work(SLOW)
    assert isinstance(answer, LookupFailure) and answer.unreachable
    assert "did not answer within 0.5 s" in answer.message
    assert time.monotonic() - started < 2


def test_a_server_that_is_not_there() -> None:
    answer = CrossrefClient(f"http://127.0.0.1:{free_port()}", timeout=1).notices(ARTICLE_DOI)
    assert isinstance(answer, LookupFailure) and answer.unreachable
    assert "cannot be reached" in answer.message


@pytest.mark.parametrize(("typed", "doi"), [
    (" 10.1037/PST0000172 ", "10.1037/pst0000172"),
    ("https://doi.org/10.1037/a0037815", "10.1037/a0037815"),
    ("http://dx.doi.org/10.1037/a0037815", "10.1037/a0037815"),
    ("DOI: 10.1016/S0140-6736(20)30000-1", "10.1016/s0140-6736(20)30000-1"),
    ("10.1002/(SICI)1097-4679(199901)55:1<1::AID-JCLP1>3.0.CO;2-#",
     "10.1002/(sici)1097-4679(199901)55:1<1::aid-jclp1>3.0.co;2-#"),
])
def test_dois_are_normalised(typed: str, doi: str) -> None:
    assert normalise_doi(typed) == doi


@pytest.mark.parametrize("typed", [
    "", "   ", "10.1037", "10.1037/", "11.1037/abc", "10.12/abc", "pst0000172",
    "https://example.org/10.1037/abc", "javascript:alert(1)//10.1037/abc",
    "10.1037/abc def", "10.1037/abc\r\nX-Injected: 1", "10.1037/abc\x00", "10.1037/" + "a" * 400,
])
def test_anything_but_a_doi_is_refused_without_asking(crossref: FakeCrossref, typed: str) -> None:
    with pytest.raises(ContentError, match="is not a DOI; a DOI looks like 10.1037/pst0000172"):
        normalise_doi(typed)
    answer = client(crossref).work(typed)
    assert isinstance(answer, LookupFailure) and "is not a DOI" in answer.message
    assert crossref.requests == []


def test_a_doi_cannot_walk_out_of_the_works_path(crossref: FakeCrossref) -> None:
    hostile = "10.1234/../../members?rows=1000#x"
    answer = client(crossref).work(hostile)
    assert isinstance(answer, LookupFailure) and answer.status == 404
    assert crossref.requests[-1]["path"] == "/works/10.1234%2F..%2F..%2Fmembers%3Frows%3D1000%23x"
    assert crossref.requests[-1]["query"] == {"mailto": [MAILTO]}


def test_a_mailto_that_would_split_a_header_is_not_sent(crossref: FakeCrossref) -> None:
    found(CrossrefClient(crossref.url, "a@example.org\r\nX-Injected: 1").work(ARTICLE_DOI))
    assert crossref.requests[-1]["user_agent"] == "newsletter/1"
    assert crossref.requests[-1]["query"] == {}


def test_sentence_case_keeps_acronyms_and_capitalises_after_a_colon() -> None:
    assert sentence_case("Cognitive Behavioral Therapy for PTSD: A Meta-Analysis") == \
        "Cognitive behavioral therapy for PTSD: A meta-analysis"
    assert sentence_case("The McDonald Effect") == "The McDonald effect"


def test_notices_name_the_updated_doi_and_their_type(crossref: FakeCrossref) -> None:
    retraction = client(crossref).notices(ARTICLE_DOI)
    assert not isinstance(retraction, LookupFailure)
    assert [(n.notice_doi, n.kind, n.label, n.date, n.blocking) for n in retraction] == [
        (RETRACTION_DOI, "retraction", "Retraction", "2024-03-05", True)]
    assert crossref.requests[-1]["query"]["filter"] == [f"updates:{ARTICLE_DOI}"]
    correction = client(crossref).notices(CORRECTED_DOI)
    assert not isinstance(correction, LookupFailure)
    assert [(n.notice_doi, n.kind, n.blocking) for n in correction] == [
        (CORRECTION_DOI, "correction", False)]


@pytest.fixture
def guarded(make_newsletter: MakeNewsletter, crossref: FakeCrossref) -> Newsletter:
    nl = make_newsletter(crossref_url=crossref.url, crossref_mailto=MAILTO, crossref_timeout=1.0)
    load_month(nl)
    return nl


def test_a_retraction_blocks_scheduling_until_acknowledged(guarded: Newsletter) -> None:
    with pytest.raises(ScheduleError) as refused:
        schedule(guarded, MONTH, "2030-01-01 09:00")
    check = check_updates(guarded, MONTH)
    (blocking,) = check.blocking
    assert f"summary #{blocking.summary_id} (Methods of Repairing Alliance Ruptures)" in \
        str(refused.value)
    assert f"notice {RETRACTION_DOI} (retraction) for {ARTICLE_DOI} is not acknowledged" in \
        str(refused.value)
    assert {(r.notice_doi, r.kind, r.blocking) for r in check.rows} == {
        (RETRACTION_DOI, "retraction", True), (CORRECTION_DOI, "correction", False)}
    row = acknowledge(guarded, blocking.summary_id, f"https://doi.org/{RETRACTION_DOI}", "Dr. Tasca")
    assert row.acknowledged_by == "Dr. Tasca" and not row.blocking
    assert schedule(guarded, MONTH, "2030-01-01 09:00").state == "scheduled"
    assert len(check_updates(guarded, MONTH).rows) == 2  # asked again: stored once


def test_unreachable_crossref_warns_but_stored_retractions_still_block(
        guarded: Newsletter, caplog: pytest.LogCaptureFixture) -> None:
    check_updates(guarded, MONTH)
    down = replace(guarded.config, crossref_url=f"http://127.0.0.1:{free_port()}")
    offline = Newsletter(down, guarded.engine, guarded.sessions)
    with caplog.at_level(logging.WARNING, "newsletter.crossref"), \
            pytest.raises(ScheduleError, match="is not acknowledged"):
        schedule(offline, MONTH, "2030-01-01 09:00")
    assert "could not ask Crossref" in caplog.text and "cannot be reached" in caplog.text


def test_unreachable_crossref_does_not_block_a_clean_edition(
        make_newsletter: MakeNewsletter, caplog: pytest.LogCaptureFixture) -> None:
    nl = make_newsletter(crossref_url=f"http://127.0.0.1:{free_port()}", crossref_timeout=1.0)
    load_month(nl)
    with caplog.at_level(logging.WARNING, "newsletter.crossref"):
        assert schedule(nl, MONTH, "2030-01-01 09:00").state == "scheduled"
    assert "scheduling goes on with the notices stored so far" in caplog.text


def test_acknowledging_an_unknown_notice_is_refused(guarded: Newsletter) -> None:
    check_updates(guarded, MONTH)
    with pytest.raises(ContentError, match=r"has no notice 10\.1037/nothing"):
        acknowledge(guarded, 1, "10.1037/nothing", "me")
    with pytest.raises(ContentError, match="is not a DOI"):
        acknowledge(guarded, 1, "nothing", "me")


def test_updates_and_acknowledge_through_the_cli(guarded: Newsletter, run_cli: RunCli,
                                                 crossref: FakeCrossref) -> None:
    run_cli.env["NEWSLETTER_CROSSREF_URL"] = crossref.url
    listed = json.loads(run_cli("summary", "updates", MONTH, "--json").output)
    retraction = next(u for u in listed["updates"] if u["type"] == "retraction")
    assert retraction["blocking"] and retraction["notice_doi"] == RETRACTION_DOI
    text = run_cli("summary", "updates", MONTH).output
    assert "BLOCKS SCHEDULING" in text and "1 blocking" in text
    assert "has no DOI; it cannot be checked" in text
    done = run_cli("summary", "acknowledge", str(retraction["summary_id"]), RETRACTION_DOI,
                   "--by", "Dr. Tasca").output
    assert "acknowledged by Dr. Tasca" in done
    assert "0 blocking" in run_cli("summary", "updates", MONTH).output


def test_summary_new_writes_a_skeleton_the_editor_completes(guarded: Newsletter, run_cli: RunCli,
                                                           crossref: FakeCrossref,
                                                           tmp_path: Path) -> None:
    run_cli.env["NEWSLETTER_CROSSREF_URL"] = crossref.url
    result = run_cli("summary", "new", "--doi", f"https://doi.org/{CHAPTER_DOI}", "--month",
                     "2026-12", "--out", "new.md")
    assert "APA sentence case would be:  Research on training in psychotherapy" in result.output
    text = (tmp_path / "new.md").read_text(encoding="utf-8")
    assert "# title is in the publisher's casing" in text and "# ISBN: 9781118038208" in text
    with guarded.session() as session:
        topics, types = topic_slugs(session), research_type_slugs(session)
    with pytest.raises(ContentErrors) as incomplete:
        parse_summary(text, "new.md", topics=topics, research_types=types)
    assert {e.field for e in incomplete.value.errors} == {"topics", "research_type"}
    done = parse_summary(text.replace("topics: []", "topics:\n- training").replace(
        "research_type: pick-one", "research_type: review"), "new.md", topics=topics,
        research_types=types)
    assert done.status == "draft" and done.citation == found(client(crossref).work(CHAPTER_DOI)).citation
    run_cli("summary", "new", "--doi", CHAPTER_DOI, "--out", "new.md", code=1)  # never overwrites
    refused = run_cli("summary", "new", "--doi", NOT_FOUND, "--out", "missing.md", code=1)
    assert "does not know the DOI" in refused.output and not (tmp_path / "missing.md").exists()
