"""Every string of the code and the templates has a French translation in one of the catalogues."""

from __future__ import annotations

import re
from collections import defaultdict
from functools import cache
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
CATALOGUES = ROOT / "hpmail" / "translations" / "fr" / "LC_MESSAGES"
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None, "lazy_ngettext": (1, 2)}
PLACEHOLDER = re.compile(r"%\((\w+)\)[#0 +-]*\d*(?:\.\d+)?[sdifr]")


def method_map() -> list[tuple[str, str]]:
    """Return the extraction rules of babel.cfg ([python: …] and [jinja2: …] sections)."""
    sections = re.findall(r"^\[(\w+):\s*([^\]]+)\]", (ROOT / "babel.cfg").read_text(), re.M)
    return [(pattern.strip(), method) for method, pattern in sections]


@cache  # walking the code and the templates is most of these tests' time: once per process
def extracted_messages() -> dict[str | tuple[str, ...], set[str]]:
    """Return each message id of the code and templates with the files where it appears."""
    found: dict = defaultdict(set)
    for filename, _lineno, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map=method_map(), keywords=KEYWORDS, strip_comment_tags=True
    ):
        if message and (not isinstance(message, tuple) or message[0]):
            found[message].add(filename)
    return found


@cache
def french_catalogue() -> dict[str, tuple[str, ...]]:
    """Return every msgid of the French .po files with its msgstr (plural forms as a tuple)."""
    translations: dict[str, tuple[str, ...]] = {}
    for po in sorted(CATALOGUES.glob("*.po")):
        with po.open("rb") as handle:
            catalogue = read_po(handle, locale="fr")
        for message in catalogue:
            if not message.id:
                continue
            key = message.id[0] if isinstance(message.id, tuple) else message.id
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            if not message.fuzzy and all(strings) and key not in translations:
                translations[key] = tuple(strings)
    return translations


def test_babel_cfg_finds_the_strings_of_the_code_and_of_the_templates():
    files = {name for names in extracted_messages().values() for name in names}
    assert any(name.endswith(".py") for name in files)
    assert any(name.endswith(".html") for name in files)


def test_every_message_has_a_french_translation():
    translations = french_catalogue()
    missing: dict[str, list[str]] = defaultdict(list)
    for message, files in extracted_messages().items():
        key = message[0] if isinstance(message, tuple) else message
        if key not in translations:
            for name in files:
                missing[name].append(key)
    report = "\n".join(
        f"  {name}:\n" + "\n".join(f"    {msgid!r}" for msgid in sorted(set(msgids)))
        for name, msgids in sorted(missing.items())
    )
    count = len({m for msgids in missing.values() for m in msgids})
    if missing:
        pytest.fail(
            f"{count} messages have no French translation in {CATALOGUES.relative_to(ROOT)}/*.po "
            f"(add them to the feature's own <domain>.po), by file:\n{report}",
            pytrace=False,
        )


def test_every_placeholder_of_a_message_is_kept_in_its_french_translation():
    wrong = []
    for msgid, strings in french_catalogue().items():
        wanted = set(PLACEHOLDER.findall(msgid))
        for string in strings:
            if not wanted <= set(PLACEHOLDER.findall(string)):
                wrong.append(f"  {msgid!r} -> {string!r} lacks {sorted(wanted)}")
    if wrong:
        pytest.fail(
            "French translations that drop a placeholder:\n" + "\n".join(wrong), pytrace=False
        )
