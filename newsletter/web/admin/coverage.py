"""Topic coverage at /admin/topics (editors and owners): every topic against the last 12
editions, how many readers follow each, and the topics followed by many that no recent summary
covered. The figures are `newsletter.coverage.topic_coverage`, a few set-based queries; the
follower counts, the one query that reads every subscriber, are kept for FOLLOWERS_SECONDS per
process (the page says as of when), so an editor going back and forth does not pay it each time."""

from __future__ import annotations

import time
from datetime import datetime

from flask import current_app, render_template
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from newsletter.coverage import RECENT_EDITIONS, Followers, follower_counts, topic_coverage
from newsletter.db import utcnow

from .auth import current_editor, requires
from .views import blueprint

FOLLOWERS_SECONDS = 60.0
CACHE = "console_coverage_followers"


def _followers(db: Session) -> tuple[Followers, datetime]:
    kept = current_app.extensions.get(CACHE)
    if kept is not None and time.monotonic() - kept[0] < FOLLOWERS_SECONDS:
        return kept[1], kept[2]
    counted, at = follower_counts(db), utcnow()
    current_app.extensions[CACHE] = (time.monotonic(), counted, at)
    return counted, at


@blueprint.route("/topics")
@requires()
def coverage(db: Session) -> ResponseReturnValue:
    followers, counted_at = _followers(db)
    return render_template("admin/coverage.html", editor=current_editor(),
                           coverage=topic_coverage(db, followers=followers), recent=RECENT_EDITIONS,
                           counted_at=counted_at, keep_seconds=int(FOLLOWERS_SECONDS))
