"""`newsletter status MONTH`'s document, for the CLI and the console's report alike: the ledger's
counts and the deliveries needing attention (sending/report.py), the last send's workers, the
delivery-feedback figures (feedback/report.py) and the clicks (clicks/figures.py). Rows a dead
worker left in flight are settled first, by its journal, as the next send would settle them."""

from __future__ import annotations

from typing import Any

from .clicks import click_figures
from .context import Newsletter
from .feedback.report import month_feedback
from .sending import control
from .sending.report import edition_status

__all__ = ["status_document"]


def status_document(nl: Newsletter, month: str, *, deliveries: bool = True, rejected: bool = False,
                    attention_offset: int = 0, attention_limit: int | None = None) -> dict[str, Any]:
    """Everything `status --json` prints; a page asks without `deliveries`, with the `rejected`
    rows among those needing attention, and for one page of them (see `edition_status`)."""
    control.settle_dead_workers(nl, month)
    document = edition_status(nl, month, deliveries=deliveries, rejected=rejected,
                              attention_offset=attention_offset, attention_limit=attention_limit)
    document["workers"] = control.workers(nl, month)
    document["clicks"] = click_figures(nl, month)
    document["feedback"] = month_feedback(nl, month)
    return document
