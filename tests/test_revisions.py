"""Summary revisions (kept on every save, listed, restored through the file loader) and export,
which round-trips through the loader exactly: the seed archive's every summary, the sample
month, and a book chapter; on both databases."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from newsletter.archive.importer import import_archive
from newsletter.archive.tagging import tag_summary
from newsletter.content.history_models import SummaryRevision
from newsletter.content.models import Summary
from newsletter.content.restore import restore_revision
from newsletter.content.revisions import (
    draft_fields,
    export_summary,
    get_summary,
    list_revisions,
    summary_draft,
)
from newsletter.content.store import upsert_summary
from newsletter.content.summary_file import SummaryDraft, parse_summary
from newsletter.context import Newsletter
from newsletter.domain import Citation
from newsletter.errors import ContentError, ContentErrors
from newsletter.taxonomy import research_type_slugs, topic_slugs
from tests.builders import SUMMARIES
from tests.conftest import RunCli

from .builders import ARCHIVE_SAMPLE

SEED = ARCHIVE_SAMPLE

CHAPTER = SummaryDraft(
    source="chapter.md", id="2026-12-training", month="2026-12", status="draft",
    headline="What Research Says About Training Therapists", byline="Giorgio A. Tasca",
    citation=Citation(authors=("Hill, C. E.", "Knox, S."), year=2013,
                      title="Training and supervision in psychotherapy",
                      source="Bergin and Garfield's handbook of psychotherapy and behavior change",
                      book_title="Bergin and Garfield's handbook of psychotherapy and behavior change",
                      editors=("Lambert, M. J.",), edition="6th", pages="775-811",
                      publisher="Wiley", doi="10.1002/9781118781890.ch2"),
    topics=("therapist-factors", "training"), research_type="review",
    note_md="A chapter, not an article:\n\n- read it *slowly*",
    body_md="Hill and Knox review training research.\n\nA second paragraph: `code`, <b>tags</b>.",
    implications_md="Supervisors can *train* specific skills.")


def vocabulary(nl: Newsletter) -> dict[str, list[str]]:
    with nl.session() as session:
        return {"topics": topic_slugs(session), "research_types": research_type_slugs(session)}


def exported_round_trips(nl: Newsletter, summary_id: int) -> None:
    """export → load gives back the stored record, and loading it again changes nothing."""
    with nl.session() as session:
        text = export_summary(session, summary_id)
        stored = summary_draft(get_summary(session, summary_id))
    loaded = parse_summary(text, "exported.md", **vocabulary(nl))
    assert draft_fields(loaded) == draft_fields(stored)
    with nl.session() as session:
        result = upsert_summary(session, loaded)
        assert (result.summary.id, result.created) == (summary_id, False)
        assert export_summary(session, summary_id) == text


@pytest.mark.skipif(not SEED.is_file(), reason=f"the legacy archive sample {SEED} is absent")
def test_every_seed_summary_exports_and_loads_back_exactly(newsletter: Newsletter) -> None:
    report = import_archive(newsletter, SEED)
    assert report.summaries_added >= 3
    with newsletter.session() as session:
        ids = list(session.scalars(select(Summary.id).order_by(Summary.id)))
        for summary_id in ids:  # the archive carries no topics; a file needs one
            tag_summary(session, summary_id, ["miscellaneous"])
    assert len(ids) == report.summaries_added
    for summary_id in ids:
        exported_round_trips(newsletter, summary_id)


def test_a_book_chapter_and_the_sample_month_round_trip(newsletter: Newsletter) -> None:
    with newsletter.session() as session:
        ids = [upsert_summary(session, draft).summary.id for draft in (CHAPTER, *SUMMARIES)]
    for summary_id in ids:
        exported_round_trips(newsletter, summary_id)
    with newsletter.session() as session:
        text = export_summary(session, ids[0])
    assert "book_title: Bergin and Garfield's handbook" in text and "source:" not in text
    assert "edition: 6th" in text and "byline: Giorgio A. Tasca" in text


def test_every_save_keeps_a_revision_and_any_one_can_be_restored(newsletter: Newsletter) -> None:
    edited = replace(CHAPTER, headline="Training Therapists: The Evidence", status="ready",
                     topics=("training",))
    with newsletter.session() as session:
        summary_id = upsert_summary(session, CHAPTER).summary.id
        upsert_summary(session, CHAPTER)  # unchanged: no new revision
        upsert_summary(session, edited, who="console editor@pprnet.example")
        rows = list_revisions(session, summary_id)
    assert [(r.number, r.headline, r.status, r.saved_by) for r in rows] == [
        (1, CHAPTER.headline, "draft", "file chapter.md"),
        (2, edited.headline, "ready", "console editor@pprnet.example")]
    with newsletter.session() as session:
        restore_revision(session, summary_id, 1, who="tasca (restored revision 1)",
                         **vocabulary(newsletter))
        restored = summary_draft(get_summary(session, summary_id))
        assert draft_fields(restored) == draft_fields(replace(CHAPTER, source=restored.source))
        assert [r.saved_by for r in list_revisions(session, summary_id)][-1] == \
            "tasca (restored revision 1)"


def test_a_revision_that_no_longer_validates_is_refused_like_a_file(
        newsletter: Newsletter) -> None:
    with newsletter.session() as session:
        summary_id = upsert_summary(session, CHAPTER).summary.id
        revision = session.scalar(select(SummaryRevision))
        assert revision is not None
        revision.fields = {**revision.fields, "topics": ["no-such-topic"],
                           "headline": "Two\nlines"}
    with newsletter.session() as session, pytest.raises(ContentErrors) as refused:
        restore_revision(session, summary_id, 1, who="me", **vocabulary(newsletter))
    problems = {(e.source, e.field): e.reason for e in refused.value.errors}
    assert "unknown topic 'no-such-topic'" in problems[(f"revision 1 of summary #{summary_id}",
                                                        "topics[0]")]
    assert "single line" in problems[(f"revision 1 of summary #{summary_id}", "headline")]
    with newsletter.session() as session, pytest.raises(ContentError, match="has no revision 9"):
        restore_revision(session, summary_id, 9, who="me", **vocabulary(newsletter))
    with newsletter.session() as session, pytest.raises(ContentError, match="no summary #999"):
        export_summary(session, 999)


def test_revisions_restore_and_export_through_the_cli(newsletter: Newsletter, run_cli: RunCli,
                                                      tmp_path: Path) -> None:
    with newsletter.session() as session:
        summary_id = upsert_summary(session, CHAPTER).summary.id
        upsert_summary(session, replace(CHAPTER, headline="A Second Headline"))
    listed = json.loads(run_cli("summary", "revisions", str(summary_id), "--json").output)
    assert [(r["number"], r["headline"]) for r in listed] == [
        (1, CHAPTER.headline), (2, "A Second Headline")]
    restored = run_cli("summary", "restore", str(summary_id), "1", "--by", "tasca").output
    assert "revision 1 restored" in restored
    run_cli("summary", "export", str(summary_id), "--out", "out.md")
    exported = (tmp_path / "out.md").read_text(encoding="utf-8")
    assert parse_summary(exported, "out.md", **vocabulary(newsletter)).headline == CHAPTER.headline
    assert run_cli("summary", "export", str(summary_id)).output == exported
    run_cli("summary", "export", str(summary_id), "--out", "out.md", code=1)
    assert "updated" in run_cli("summary", "add", "out.md").output
    lines = run_cli("summary", "revisions", str(summary_id)).output.splitlines()
    assert len(lines) == 3 and "tasca (restored revision 1)" in lines[2]
