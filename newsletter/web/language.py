"""Which language a page speaks, and Flask-Babel wired to the project's `messages` catalogue.

A page speaks, in this order: the `?lang=` of its address (the language switch link), the
language of the subscriber a link was made for (a view sets it with `use_language`), or the
best match for the browser's `Accept-Language`. Every answer says `Vary: Accept-Language`, so a
cache never hands one reader's language to another. Languages, catalogues and dates are
`newsletter.i18n`'s; this module only chooses.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from flask import Flask, Response, current_app, g, request
from flask_babel import Babel, get_locale

from ..i18n import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    format_date,
    language_name,
    negotiate,
    normalise_language,
    translations_dir,
)

__all__ = ["init_languages", "page_language", "use_language"]


def init_languages(app: Flask) -> None:
    """Flask-Babel on `app` with the `messages` domain, plus the helpers the templates use."""
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(translations_dir()))
    app.config.setdefault("BABEL_DOMAIN", "messages")
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LANGUAGE)
    Babel(app, locale_selector=_select)
    app.jinja_env.globals.update(page_language=page_language, other_languages=_switches,
                                 language_name=language_name, languages=LANGUAGES)
    app.jinja_env.filters["long_date"] = lambda moment: long_date(moment)
    app.after_request(_vary)


def use_language(language: str | None) -> None:
    """The language of the person this page is about (their stored choice), unless the address
    asks for another; call before rendering."""
    known = normalise_language(language)
    if known:
        g.subscriber_language = known


def page_language() -> str:
    """The language of the page being answered (also in an app without Flask-Babel, such as
    one that serves only the archive blueprint)."""
    if "babel" not in current_app.extensions:
        return _select()
    return str(get_locale() or DEFAULT_LANGUAGE)


def long_date(moment: datetime | None) -> str:
    return format_date(moment, page_language()) if moment else ""


def _select() -> str:
    asked = normalise_language(request.args.get("lang", "")[:10])
    return asked or getattr(g, "subscriber_language", None) or negotiate(
        request.headers.get("Accept-Language"))


def _switches() -> list[tuple[str, str, str]]:
    """(language, its name in itself, this page's address in it) for every other language."""
    current = page_language()
    query = {k: v for k, v in request.args.items() if k != "lang"}
    links = []
    for language in LANGUAGES:
        if language != current:
            href = request.path + "?" + urlencode({**query, "lang": language})
            links.append((language, language_name(language), href))
    return links


def _vary(response: Response) -> Response:
    response.vary.add("Accept-Language")
    return response
