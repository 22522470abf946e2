"""The one rule for text that can reach an e-mail header: one line, no control character."""

from __future__ import annotations

import sys

import pytest

from hpmail.core.text import (
    is_content_type,
    is_header_safe,
    one_line,
    without_unsafe_characters,
)

# Every C0 and C1 control character, DEL, and the Unicode line and paragraph separators.
UNSAFE = [chr(c) for c in (*range(0x00, 0x20), *range(0x7F, 0xA0), 0x2028, 0x2029)]


def test_every_character_that_splitlines_breaks_on_is_refused():
    breaking = [chr(c) for c in range(sys.maxunicode + 1) if len(f"a{chr(c)}b".splitlines()) > 1]
    assert {"\n", "\x0b", "\x1c", "\x85", "\u2028"} <= set(breaking)
    assert [hex(ord(c)) for c in breaking if is_header_safe(f"a{c}b")] == []


@pytest.mark.parametrize("character", UNSAFE, ids=lambda c: f"U+{ord(c):04X}")
def test_control_and_separator_characters_are_not_header_safe(character):
    assert not is_header_safe(f"Lycée{character}From: Le Proviseur")
    assert without_unsafe_characters(f"Du{character}pont") == "Dupont"


def test_accents_quotes_commas_and_other_scripts_are_header_safe():
    for text in ("Élodie « Lou » Dupont, L1", "Zoë O'Neil", "李 小龍", "", None):
        assert is_header_safe(text)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("application/pdf", True),
        ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", True),
        ("text/plain", True),
        ("application/pdf\x0bx-a: b", False),
        ("text/html; charset=utf-8", False),
        ("application/pdf\r\nX-Evil: 1", False),
        ("pdf", False),
        ("", False),
    ],
)
def test_a_content_type_is_a_bare_type_and_subtype(value, valid):
    assert is_content_type(value) is valid


def test_a_server_reply_in_bytes_or_on_several_lines_is_shown_on_one_line_with_single_spaces():
    reply = b"5.1.1 <x@example.org>:\n  unknown   user"
    assert one_line(reply) == "5.1.1 <x@example.org>: unknown user"
    assert one_line("Greylisted,\r\nplease try later") == "Greylisted, please try later"
    assert one_line(b"\xff bad") == "\ufffd bad"
    assert one_line(b"User\x00unknown\x1b[0m") == "User unknown [0m"
