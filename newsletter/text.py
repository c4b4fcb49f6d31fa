"""One safe line of text: the characters that can end, split or disguise a line, named once.

Headers, names, addresses and summary fields all end up on a line someone reads or a mail program
parses. Each check and clean-up below is built from the same character classes.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["BIDI", "CONTROLS", "INVISIBLE", "SEPARATORS", "SURROGATES", "breaks_line",
           "line_problem", "single_line", "visible_line"]

CONTROLS = "\x00-\x1f\x7f-\x9f"
"""C0 (CR, LF, tab…), DEL and C1 (NEL…): they end a line or mean nothing visible."""
SEPARATORS = "\u2028\u2029"
"""The line and paragraph separators, which some readers treat as line breaks."""
BIDI = "\u202a-\u202e\u2066-\u2069"
"""Bidi embeddings, overrides and isolates: they reorder what is shown."""
INVISIBLE = "\u200b-\u200f"
"""Zero-width space, non-joiner and joiner, and the left-to-right and right-to-left marks."""
SURROGATES = "\ud800-\udfff"
"""Lone halves of a UTF-16 pair: no encoding can write one."""

_BREAKS = re.compile(f"[{CONTROLS}{SEPARATORS}]+")
_NOT_IN_LINE = re.compile(f"[{CONTROLS}{SEPARATORS}{BIDI}{SURROGATES}]")
_NOT_IN_NAME = re.compile(f"[{CONTROLS}{SEPARATORS}{BIDI}{INVISIBLE}{SURROGATES}]")
_JOINER = "\u200d"


def single_line(value: str) -> str:
    """`value` with each run of line-ending characters made one space, then stripped: nothing
    left can end a header line or smuggle another one in."""
    return _BREAKS.sub(" ", value).strip()


def breaks_line(value: str) -> bool:
    """Whether `value` holds a character that could end its line (CR, LF, NEL, U+2028…)."""
    return _BREAKS.search(value) is not None


def line_problem(value: str, *, name: bool = False) -> str | None:
    """Where `value` stops being one honest line (`found U+202E at character 7`), else None.

    Refused: line breaks and other controls, bidi controls and lone surrogates; for a person's
    `name` (To header, greeting), zero-width characters too, which could hide a second name.
    """
    found = (_NOT_IN_NAME if name else _NOT_IN_LINE).search(value)
    if found is None:
        return None
    return f"found U+{ord(found.group()):04X} at character {found.start() + 1}"


def visible_line(value: str) -> str:
    """One line of visible text, for a subject or preheader made from content: every control,
    format (bidi, zero-width), private-use or unassigned character becomes a space, and runs of
    whitespace collapse. The zero-width joiner stays: emoji sequences need it."""
    shown = "".join(" " if ch != _JOINER and unicodedata.category(ch)[0] == "C" else ch
                    for ch in value)
    return " ".join(shown.split())
