"""Small builders for test content: realistic summaries and audiences, straight into the store."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from newsletter.content.store import assemble_edition, upsert_summary
from newsletter.content.summary_file import SummaryDraft
from newsletter.context import Newsletter
from newsletter.domain import Citation
from subscribers.models import ConsentMethod
from subscribers.store import add_subscriber

ARCHIVE_SAMPLE = Path(__file__).parent / "fixtures" / "seed" / "archive-sample.txt"
"""A copy of ../shared/seed/archive-sample.txt, the real legacy archive excerpt, so a clean clone
tests with it."""

MONTH = "2015-01"

SUMMARIES = (
    SummaryDraft(
        source="alliance.md", id=None, month=MONTH,
        headline="Methods of Repairing Alliance Ruptures",
        citation=Citation(authors=("Safran, J. D.", "Kraus, J."), year=2014,
                          title="Alliance ruptures, impasses and enactments: A relational perspective",
                          source="Psychotherapy", volume="51", issue="3", pages="381-387",
                          doi="10.1037/a0037815"),
        topics=("alliance-and-therapeutic-relationship", "training"),
        research_type="review", note_md=None,
        body_md="In this clinically oriented review, Safran and Kraus discuss *alliance ruptures*.",
        implications_md="Ruptures range from minor tensions to major rifts.", status="ready"),
    SummaryDraft(
        source="transference.md", id=None, month=MONTH,
        headline="Transference in Psychotherapy: A Review of the Research",
        citation=Citation(authors=("Hoglend, P.",), year=2014,
                          title="Exploration of the patient-therapist relationship in psychotherapy",
                          source="American Journal of Psychiatry", volume="171", pages="1056-1066"),
        topics=("transference-and-countertransference", "psychodynamic-therapy-pdt"),
        research_type="review", note_md=None,
        body_md="Per Hoglend reviews research on transference work.",
        implications_md="Transference work helps patients with long-standing problems.",
        status="ready"),
    SummaryDraft(
        source="empathy.md", id=None, month=MONTH,
        headline="Does Therapist Empathy Predict Outcome?",
        citation=Citation(authors=("Elliott, R.", "Bohart, A. C.", "Watson, J. C.", "Murphy, D."),
                          year=2018, title="Therapist empathy and client outcome: An updated "
                          "meta-analysis", source="Psychotherapy", volume="55", issue="4",
                          pages="399-410", doi="10.1037/pst0000175"),
        topics=("empathy", "therapist-factors"),
        research_type="meta-analysis", note_md=None,
        body_md="Empathy is a moderately strong predictor of outcome.",
        implications_md="Clinicians can *train* empathic responding.", status="ready"),
)

# name, email, topics (None = all)
AUDIENCE: tuple[tuple[str, str, frozenset[str] | None], ...] = (
    ("Ada All", "ada@example.org", None),
    ("Bob Alliance", "bob@example.org", frozenset({"alliance-and-therapeutic-relationship"})),
    ("Cy Empathy", "cy@example.org", frozenset({"empathy", "training"})),
    ("Di Nothing", "di@example.org", frozenset({"neuroscience-and-brain"})),
)


def load_month(nl: Newsletter, audience=AUDIENCE, *, month: str = MONTH,  # type: ignore[no-untyped-def]
               statuses: tuple[str, ...] = ("ready",) * len(SUMMARIES), assemble: bool = True) -> None:
    """The sample summaries as `month`'s (first `len(statuses)` of them, with those statuses)."""
    with nl.session() as session:
        for draft, status in zip(SUMMARIES, statuses, strict=False):
            upsert_summary(session, replace(draft, month=month, status=status))
        if assemble:
            assemble_edition(session, month)
        for name, email, topics in audience:
            add_subscriber(session, email, name=name, topics=topics,
                           method=ConsentMethod.ADMIN, source="test")
