"""The editor's view of the counts: clicks per summary of an edition and per link."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ..content.models import Summary
from ..context import Newsletter
from .models import ClickCount

APPROXIMATE = ("approximate: mail systems' link scanners also follow links, and repeats of one "
               "client within a minute count once")


def click_figures(nl: Newsletter, month: str) -> dict[str, Any]:
    """Clicks for `month`: a total, then per summary (most clicked first) with its links."""
    with nl.session() as session:
        rows = session.execute(
            select(ClickCount.summary_uid, Summary.headline, ClickCount.url, ClickCount.clicks)
            .outerjoin(Summary, Summary.uid == ClickCount.summary_uid)
            .where(ClickCount.edition_month == month)).all()
    summaries: dict[str, dict[str, Any]] = {}
    for uid, headline, url, clicks in rows:
        entry = summaries.setdefault(uid, {"summary_uid": uid, "headline": headline,
                                           "clicks": 0, "links": []})
        entry["clicks"] += clicks
        entry["links"].append({"url": url, "clicks": clicks})
    for entry in summaries.values():
        entry["links"].sort(key=lambda link: (-link["clicks"], link["url"]))
    ordered = sorted(summaries.values(), key=lambda s: (-s["clicks"], s["headline"] or ""))
    return {"tracking": bool(nl.config.click_tracking), "approximate": APPROXIMATE,
            "total": sum(s["clicks"] for s in ordered), "summaries": ordered}
