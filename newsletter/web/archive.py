"""The archive served live under /archive/: the very pages `build_site` writes, by the same paths.

Register on the app and put the opened Newsletter where the views find it:

    app.extensions["newsletter"] = nl
    app.register_blueprint(archive_blueprint)        # /archive/, /archive/2015-01/, …

Each request reads the store, so a newly sent edition appears at once. `/archive/2015-01` (the
email's "view in browser" link) redirects to `/archive/2015-01/`, keeping any `#summary` anchor,
so the pages' relative links resolve as they do in the static build.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, redirect, request
from werkzeug.wrappers.response import Response as BaseResponse

from ..archive.site import open_site
from ..context import Newsletter
from ..mail.render import Renderer

__all__ = ["CSP", "archive_blueprint"]

archive_blueprint = Blueprint("archive", __name__, url_prefix="/archive")

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


@archive_blueprint.get("/", defaults={"path": ""})
@archive_blueprint.get("/<path:path>")
def archive_page(path: str) -> BaseResponse:
    nl = current_app.extensions["newsletter"]
    site = open_site(nl, _renderer(nl))
    wanted = path + "index.html" if path == "" or path.endswith("/") else path
    if wanted not in site and f"{path}/index.html" in site:
        return redirect(request.script_root + request.path + "/", code=308)
    page = site.render(wanted)
    if page is None:
        abort(404)
    response = Response(page.body, content_type=page.media_type)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Cache-Control"] = "public, max-age=300"  # published pages change rarely
    return response
