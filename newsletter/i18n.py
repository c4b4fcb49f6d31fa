"""The chrome's languages: which exist, their gettext catalogues, Babel dates, and a reader's choice.

The one place that lists languages. Summaries keep the language they were written in; only the
chrome (headings, footer, buttons, dates, the plain-text parts, the web pages) is translated. Two
gettext domains live side by side in `newsletter/translations/<lang>/LC_MESSAGES/`: `email` (the
emails) and `messages` (the web pages, through Flask-Babel).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from functools import cache
from pathlib import Path

from babel import Locale
from babel.dates import format_date as _babel_format_date
from babel.support import NullTranslations, Translations

__all__ = ["DEFAULT_LANGUAGE", "DOMAINS", "LANGUAGES", "format_date", "format_month",
           "language_name", "negotiate", "normalise_language", "translations", "translations_dir"]

DEFAULT_LANGUAGE = "en"
LANGUAGES: tuple[str, ...] = ("en", "fr")
"""The languages of the chrome, default first; `newsletter.content.variants` keys variants by them."""
DOMAINS = ("email", "messages")
"""`email`: every email's chrome; `messages`: the web pages."""

_MAX_ACCEPT_LANGUAGE = 1000
_RANGE = re.compile(r"^\s*([A-Za-z]{1,8})(?:[-_][A-Za-z0-9]{1,8})*\s*"
                    r"(?:;\s*q\s*=\s*([01](?:\.\d{0,3})?))?\s*$")


def translations_dir() -> Path:
    return Path(__file__).resolve().parent / "translations"


@cache
def translations(language: str, domain: str = "email") -> NullTranslations:
    """The compiled catalogue for (language, domain), loaded once per process and shared.

    English is the source language, so its catalogue may be absent: the messages pass through.
    An unknown language is a programming error, not a reader's whim: callers normalise first.
    """
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}; known: {', '.join(LANGUAGES)}")
    if domain not in DOMAINS:
        raise ValueError(f"unknown gettext domain {domain!r}; known: {', '.join(DOMAINS)}")
    if language == DEFAULT_LANGUAGE:
        return NullTranslations()
    return Translations.load(str(translations_dir()), [language], domain)


def normalise_language(value: str | None) -> str | None:
    """A known language for a tag such as "fr", "FR", "fr-CA" or "fr_CA"; None when unknown.

    For anything a person or a file gives us: a CSV column, a form field, a stored value.
    """
    if not value:
        return None
    primary = re.split(r"[-_]", value.strip(), maxsplit=1)[0].lower()
    return primary if primary in LANGUAGES else None


def negotiate(accept_language: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    """The best known language for an `Accept-Language` header (RFC 9110 §12.5.4), else `default`.

    Hostile headers are expected: an over-long header or a malformed range is ignored, never fatal.
    Ties keep the header's order.
    """
    if not accept_language or len(accept_language) > _MAX_ACCEPT_LANGUAGE:
        return default
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")):
        match = _RANGE.match(part)
        if match is None:
            continue
        quality = float(match.group(2)) if match.group(2) is not None else 1.0
        language = normalise_language(match.group(1))
        if language is not None and quality > 0:
            ranked.append((-quality, position, language))
    return min(ranked)[2] if ranked else default


def _locale(language: str) -> Locale:
    return Locale.parse(language if language in LANGUAGES else DEFAULT_LANGUAGE)


def format_date(value: date | datetime, language: str, format: str = "long") -> str:
    """`value` as the reader's language writes it: "October 6, 2026" / "6 octobre 2026"."""
    return _babel_format_date(value, format=format, locale=_locale(language))


def format_month(year: int, month: int, language: str) -> str:
    """A month as a heading: "October 2026" / "octobre 2026" (CLDR's stand-alone month name)."""
    return _babel_format_date(date(year, month, 1), format="LLLL y", locale=_locale(language))


def language_name(language: str, in_language: str | None = None) -> str:
    """"English", "français": a language named in its own tongue, or in `in_language`."""
    locale = _locale(language)
    name = locale.get_display_name(_locale(in_language) if in_language else locale) or language
    return name
