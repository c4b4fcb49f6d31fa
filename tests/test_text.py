"""One safe line of text: the character classes of newsletter.text, and the callers that once each
had their own (header cleaning, the To name, addresses, subscriber names, summary fields) agreeing
with them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from newsletter.content.summary_file import single_line_problem
from newsletter.errors import ContentError
from newsletter.mail.personalise import _fit, fold_header, format_recipient
from newsletter.mail.render import clean_header
from newsletter.markdown import WIDTH, wrap_text
from newsletter.text import breaks_line, line_problem, single_line, visible_line
from subscribers.addresses import InvalidAddress, normalise_email
from subscribers.flows import validate_name

BREAKS = ["\r", "\n", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029", "\x00", "\x7f", "\t"]
BIDI = ["\u202a", "\u202e", "\u2066", "\u2069"]
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u200e", "\u200f"]
FINE = ["é", "ß", "中", "\U0001f600", "-", "'", "\xa0"]


@pytest.mark.parametrize("char", BREAKS)
def test_a_line_break_or_control_is_found_and_collapsed(char: str) -> None:
    assert breaks_line(f"a{char}b")
    assert single_line(f"  a{char}{char}b{char} ") == "a b"
    assert line_problem(f"ab{char}") == f"found U+{ord(char):04X} at character 3"


@pytest.mark.parametrize("char", BIDI + ["\udc80"])
def test_bidi_controls_and_lone_surrogates_are_no_line_but_break_nothing(char: str) -> None:
    assert not breaks_line(f"a{char}b") and single_line(f"a{char}b") == f"a{char}b"
    assert line_problem(f"a{char}b") == f"found U+{ord(char):04X} at character 2"


@pytest.mark.parametrize("char", INVISIBLE)
def test_zero_width_characters_are_refused_only_in_names(char: str) -> None:
    assert line_problem(f"a{char}b") is None
    assert line_problem(f"a{char}b", name=True) == f"found U+{ord(char):04X} at character 2"


@pytest.mark.parametrize("char", FINE)
def test_ordinary_text_passes(char: str) -> None:
    assert line_problem(f"a{char}b", name=True) is None and not breaks_line(char)
    assert visible_line(f" a{char}b ") == " ".join(f"a{char}b".split())


def test_visible_line_keeps_what_shows_and_the_emoji_joiner() -> None:
    assert visible_line("Re:\u202e gnp.exe \r\n\t x") == "Re: gnp.exe x"
    assert visible_line("\ue000private\u00adsoft\u2060joined") == "private soft joined"
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert visible_line(family) == family


@pytest.mark.parametrize("char", BREAKS + BIDI + INVISIBLE + ["\udc80"])
def test_every_caller_draws_the_same_line(char: str) -> None:
    """What each caller refuses or removes is exactly what the shared classes say."""
    value = f"Ann{char}Lee"
    with pytest.raises(ContentError, match=r"the name cannot contain line breaks or control "
                       rf"characters \(found U\+{ord(char):04X} at character 4\)$"):
        validate_name(value)
    problem = single_line_problem(value)
    assert (problem is None) == (line_problem(value) is None)
    if problem is not None:
        assert problem == f"must be a single line without control characters ({line_problem(value)})"
    if breaks_line(char):
        with pytest.raises(InvalidAddress, match="line break or control character"):
            normalise_email(f"ann{char}@example.org")
    header = fold_header("Subject", value)
    assert header.count(b"\r\n") == 1 + header.count(b"\r\n ")
    assert char not in clean_header(value) or char == "\u200d"


@given(st.text())
def test_no_text_can_end_a_header_line(value: str) -> None:
    cleaned = single_line(value)
    assert not breaks_line(cleaned) and cleaned == cleaned.strip()
    assert not breaks_line(visible_line(value).replace(" ", ""))
    to = format_recipient(value, "ann@example.org").encode("utf-8", "surrogatepass")
    assert b"\n" not in to.replace(b"\r\n ", b"")


@given(st.text(alphabet=st.sampled_from(["a", "é", "/", "-", ".", " ", "\t", "\n", "\r", "\x0b",
                                         "\x0c", "\xa0", "\u2028"]), max_size=300))
def test_a_recipients_text_value_skips_textwrap_only_where_textwrap_would_change_nothing(
        value: str) -> None:
    """The send's shortcut for links (no whitespace: no wrapping) gives textwrap's own answer."""
    assert _fit(value) == (value if len(value) <= WIDTH else wrap_text(value))
    link = "https://digest.example/u/" + "x" * 120
    assert _fit(link) == wrap_text(link) == link
