"""The archive served live under /archive/: the very pages `build_site` writes, by the same paths,
plus what only a server can do: search, the front page at `/`, and a 404 of the archive's own.

Register on the app and put the opened Newsletter where the views find it:

    app.extensions["newsletter"] = nl
    app.register_blueprint(archive_blueprint)        # /archive/, /archive/2015-01/, …
    app.register_blueprint(front_blueprint)          # /: the archive's front page

Each request reads the store, so a newly sent edition appears at once. `/archive/2015-01` (the
email's "view in browser" link) redirects to `/archive/2015-01/`, keeping any `#summary` anchor,
so the pages' relative links resolve as they do in the static build. The chrome speaks the
page's language (`web.language`); `/archive/search/?q=` answers from the database's full-text
index (`archive.search`), without JavaScript.
"""

from __future__ import annotations

import jinja2
from flask import Blueprint, Response, current_app, redirect, request
from werkzeug.wrappers.response import Response as BaseResponse

from ..archive.search import clean_query, query_terms, search_published
from ..archive.site import ArchiveSite, archive_env, open_site
from ..context import Newsletter
from ..mail.render import Renderer
from .language import page_language
from .security import with_image_sources

__all__ = ["CSP", "archive_blueprint", "front_blueprint"]

archive_blueprint = Blueprint("archive", __name__, url_prefix="/archive")
front_blueprint = Blueprint("front", __name__)

# The app's default policy allows no script; the archive's own two files (search, copy button)
# must run. Nothing else is allowed, and nothing comes from another origin.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def _renderer(nl: Newsletter) -> Renderer:
    """One Jinja environment per app: templates compile once, not per request."""
    from ..mail.compose import make_renderer

    cached = current_app.extensions.get("archive_renderer")
    if not isinstance(cached, Renderer):
        cached = current_app.extensions["archive_renderer"] = make_renderer(nl)
    return cached


def _site(months: list[str] | None = None) -> ArchiveSite:
    """The archive now (or only `months`' editions), its chrome in the page's language (one
    environment per language and app)."""
    nl = current_app.extensions["newsletter"]
    renderer = _renderer(nl)
    envs: dict[str, jinja2.Environment] = current_app.extensions.setdefault("archive_envs", {})
    language = page_language()
    if language not in envs:
        envs[language] = archive_env(renderer, language)
    return open_site(nl, renderer, envs[language], months)


def _base() -> str:
    return request.script_root + "/archive/"


def _page(body: bytes, media_type: str = "text/html; charset=utf-8", status: int = 200,
          cache: bool = True) -> Response:
    response = Response(body, status=status, content_type=media_type)
    response.headers["Content-Security-Policy"] = with_image_sources(CSP)
    # Published pages change rarely; answers that depend on a query or a miss are not kept.
    response.headers["Cache-Control"] = "public, max-age=300" if cache else "no-store"
    return response


@archive_blueprint.get("/search", endpoint="search")
@archive_blueprint.get("/search/")
@archive_blueprint.get("/search/index.html")
def search() -> Response:
    """The index finds the summaries; only their editions are loaded to show them."""
    query = clean_query(request.args.get("q", ""))
    found = []
    if query_terms(query):
        with current_app.extensions["newsletter"].session() as session:
            found = search_published(session, query)
    site = _site([hit.month for hit in found])
    hits = [site.by_uid[hit.uid] for hit in found if hit.uid in site.by_uid]
    return _page(site.search_results(_base(), query, hits, query_terms(query)), cache=False)


@archive_blueprint.get("/", defaults={"path": ""})
@archive_blueprint.get("/<path:path>")
def archive_page(path: str) -> BaseResponse:
    site = _site()
    wanted = path + "index.html" if path == "" or path.endswith("/") else path
    if wanted not in site and f"{path}/index.html" in site:
        return redirect(request.script_root + request.path + "/", code=308)
    page = site.render(wanted)
    if page is None:
        return _page(site.not_found(_base()), status=404, cache=False)
    return _page(page.body, page.media_type)


@front_blueprint.get("/")
def front() -> Response:
    """The archive's front page, with its Subscribe link one click away."""
    return _page(_site().front(_base()), cache=False)
