"""What `aileron approval` shows of an agent's text: nothing a terminal would not print as is."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aileron_cli.cli.visible import clip, escape, json_text


@given(st.text())
def test_escaped_text_has_only_printable_characters(text: str) -> None:
    """Whatever the text, its escaped form holds printable characters only."""
    assert escape(text).isprintable()


@given(
    st.recursive(
        st.none() | st.booleans() | st.text(), lambda c: st.lists(c) | st.dictionaries(st.text(), c)
    )
)
def test_json_text_is_one_printable_line(value: object) -> None:
    """Any argument value is shown as one line of printable characters."""
    shown = json_text(value)
    assert shown.isprintable() and "\n" not in shown


def test_known_tricks_are_shown_by_name() -> None:
    """ESC, carriage return, RTL override, zero-width space and DEL are shown as escapes."""
    assert json_text("a\x1b[2K\rb\u202ec\u200bd\x7f") == '"a\\u001b[2K\\rb\\u202ec\\u200bd\\x7f"'
    assert escape("\U000e0041") == "\\U000e0041"


def test_clip_marks_what_it_cut() -> None:
    """A cut value says how many characters it lost; a short one is left alone."""
    assert clip("abcdef", 4) == "abcd…(+2 chars)"
    assert clip("abcd", 4) == "abcd"
