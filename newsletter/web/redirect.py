"""`/r/TOKEN`: the click links of an edition. A genuine token redirects to its link and, on a GET
while click tracking is on, counts one click for (edition, summary, link).

Anything else is the site's 404 page, never a redirect, so `/r/` is no open redirect: a forged,
damaged or truncated token, one made for another purpose, one signed by a retired key, and one
whose link is not http(s). HEAD gets the same redirect without being counted (link checkers use
it); OPTIONS is Flask's plain answer. No cookie is set and nothing is cached or referred on.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import Blueprint, abort, current_app, redirect, request
from werkzeug.wrappers.response import Response

from ..clicks import DEDUPE_SECONDS, client_key, count_click, prune_expired
from ..context import Newsletter
from ..db import utcnow
from ..errors import StoreError
from ..mail.clicks import ClickLinks, ClickTarget
from ..tokens import InvalidToken, TokenSigner

__all__ = ["redirect_blueprint"]

log = logging.getLogger(__name__)

redirect_blueprint = Blueprint("clicks", __name__)

NOT_OURS = ("This link is not one of ours, or it is incomplete (email programs sometimes cut long "
            "links in two). Try the link in the newsletter again, or open the archive.")


def _links(nl: Newsletter) -> ClickLinks:
    """Built once per app; it reads tokens whether or not tracking is on now, so links in earlier
    editions keep working after it is turned off."""
    links = current_app.extensions.get("click_links")
    if not isinstance(links, ClickLinks):
        links = ClickLinks(TokenSigner(nl.config.secret_keys), nl.config.base_url)
        current_app.extensions["click_links"] = links
    return links


@redirect_blueprint.route("/r/<token>", methods=["GET", "HEAD"])
def follow(token: str) -> Response:
    nl: Newsletter = current_app.extensions["newsletter"]
    try:
        target = _links(nl).read(token)
    except InvalidToken:
        abort(404, description=NOT_OURS)
    if request.method == "GET" and nl.config.click_tracking:
        _count(nl, target)
    response = redirect(target.url, code=302)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _count(nl: Newsletter, target: ClickTarget) -> None:
    """The reader gets their article even when the store cannot count the click. Expired
    de-duplication keys are pruned once a window per app, not on every click."""
    key = client_key(nl.config.secret_keys[0], request.remote_addr or "",
                     request.headers.get("User-Agent", ""), target)
    now = utcnow()
    try:
        count_click(nl, target, key, now)
        last = current_app.extensions.get("clicks_pruned_at")
        if not isinstance(last, datetime) or now - last >= timedelta(seconds=DEDUPE_SECONDS):
            current_app.extensions["clicks_pruned_at"] = now
            prune_expired(nl, now)
    except StoreError:
        log.exception("click on %s %s not counted", target.month, target.summary_uid)
