"""A summary file begun from Crossref: the citation filled in, the rest for the editor to write.

The skeleton does not validate until the editor has written the headline, picked the topics
and the research type, which is the point: nothing from Crossref is taken unseen.
"""

from __future__ import annotations

from ..crossref import Work
from .summary_file import SummaryDraft, format_summary

__all__ = ["HEADLINE", "RESEARCH_TYPE", "skeleton_text"]

HEADLINE = "Write the headline"
RESEARCH_TYPE = "pick-one"
BODY = "Write the summary here."
IMPLICATIONS = "Write what the findings mean for practice here."


def _comment(text: str) -> str:
    """A YAML comment line: nothing Crossref sent may end it and start a key."""
    return "# " + " ".join(text.split())


def skeleton_text(work: Work, month: str) -> str:
    """The file: `status: draft`, Crossref's citation, comments saying what to check."""
    draft = SummaryDraft(source="crossref", id=None, month=month, headline=HEADLINE,
                         citation=work.citation, topics=(), research_type=RESEARCH_TYPE,
                         note_md=None, body_md=BODY, implications_md=IMPLICATIONS, status="draft")
    notes = [f"Citation filled from Crossref ({work.type}, DOI {work.citation.doi}): check every "
             "field.", "topics: list one or more slugs from `newsletter topics`; research_type: "
             "replace pick-one; `newsletter summary add` lists the valid ones."]
    if work.title_needs_casing:
        notes.append(f"title is in the publisher's casing; APA sentence case would be: "
                     f"{work.suggested_title}")
    if work.isbn:
        notes.append("ISBN: " + ", ".join(work.isbn))
    notes += list(work.notes)
    text = format_summary(draft)
    return "---\n" + "".join(_comment(n) + "\n" for n in notes) + text.removeprefix("---\n")
