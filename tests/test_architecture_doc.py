"""docs/ARCHITECTURE.md stays true: every module, file and function it names exists."""

from __future__ import annotations

import importlib
import re

from hpmail.config import PROJECT_ROOT

DOC = PROJECT_ROOT / "docs" / "ARCHITECTURE.md"
FEATURES = ("core", "auth", "directory", "outbox", "delivery", "accounts", "compose", "archive")
FILE = re.compile(r"(hpmail|templates|tests|docs)/[\w/.]*")
DOTTED = re.compile(r"(hpmail\.)?({})(\.\w+)+".format("|".join(FEATURES)))


def _names() -> list[str]:
    """Return every name written in backticks in the document (``a, b`` pairs split)."""
    text = re.sub(r"```.*?```", "", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)
    names = []
    for quoted in re.findall(r"`([^`\n]+)`", text):
        names += [part.strip() for part in quoted.split(",")]
    return names


def test_every_file_the_architecture_names_exists():
    paths = [name for name in _names() if FILE.fullmatch(name)]
    assert len(paths) > 20
    missing = [path for path in paths if not (PROJECT_ROOT / path).exists()]
    assert missing == []


def test_every_module_and_function_the_architecture_names_exists():
    dotted = [name for name in _names() if DOTTED.fullmatch(name)]
    assert len(dotted) >= 10
    missing = []
    for name in dotted:
        name = name if name.startswith("hpmail.") else f"hpmail.{name}"
        parts = name.split(".")
        for cut in range(len(parts), 1, -1):  # the longest importable prefix, then attributes
            try:
                target = importlib.import_module(".".join(parts[:cut]))
            except ModuleNotFoundError:
                continue
            try:
                for attribute in parts[cut:]:
                    target = getattr(target, attribute)
            except AttributeError:
                missing.append(name)
            break
        else:
            missing.append(name)
    assert missing == []
