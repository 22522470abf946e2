"""Letters' fields as Jinja, in a sandbox: checked when saved, limited in time and size when drawn.

A letter is written with Jinja's syntax, restricted to what a form letter needs: fields
(``{{ nom }}``), a filter among a few (``{{ nom|upper }}``), conditions (``{% if %}``) and loops
over a list field (``{% for absence in absences %}``). No call, no calculation, no item or attribute
other than a list item's fields, no import, include, extends, macro, block or set: what reaches
Python's internals is refused when the letter is saved, with the line. Rendering runs in Jinja's
``ImmutableSandboxedEnvironment`` whatever was saved, within a time and an output size.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache

from flask_babel import gettext as _
from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from hpmail.core.forms import InputRefused

RENDER_SECONDS = 2.0  # a letter drawn for one record
MAX_OUTPUT_CHARS = 500_000  # about a hundred pages of text
MAX_MESSAGES = 5
# In a loop, ``loop`` tells where the letter is; these are all a letter may read of it.
LOOP_ATTRIBUTES = frozenset({"index", "first", "last", "length"})

# Filters a letter may use, each harmless on text.
FILTERS = ("upper", "lower", "capitalize", "title", "trim", "default", "length", "first", "last")
# Tags that would reach outside the letter, as the writer typed them.
TAGS = {
    nodes.Import: "{% import %}",
    nodes.FromImport: "{% from … import %}",
    nodes.Include: "{% include %}",
    nodes.Extends: "{% extends %}",
    nodes.Macro: "{% macro %}",
    nodes.CallBlock: "{% call %}",
    nodes.Block: "{% block %}",
    nodes.Assign: "{% set %}",
    nodes.AssignBlock: "{% set %}",
    nodes.With: "{% with %}",
    nodes.FilterBlock: "{% filter %}",
    nodes.Scope: "{% autoescape %}",  # the only tag that makes a bare scope
    nodes.ScopedEvalContextModifier: "{% autoescape %}",
    nodes.EvalContextModifier: "{% autoescape %}",
}
# Nodes that only hold others, or compare and combine text.
# "and", "or", "not" combine conditions: they are expressions, but no calculation.
LOGIC = (nodes.And, nodes.Or, nodes.Not)
PLAIN = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.If,
    nodes.Compare,
    nodes.Operand,
    nodes.Not,
    nodes.And,
    nodes.Or,
    nodes.CondExpr,
    nodes.Concat,
    nodes.Test,
)


def _environment(autoescape: bool) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(autoescape=autoescape, undefined=StrictUndefined)
    env.globals.clear()  # no range, lipsum, cycler, joiner, namespace, dict
    env.filters = {name: env.filters[name] for name in FILTERS}
    return env


HTML_ENV = _environment(autoescape=True)
TEXT_ENV = _environment(autoescape=False)


class LetterRefused(InputRefused):
    """A letter whose fields cannot be used; messages name the line."""


class RenderLimit(Exception):
    """A letter took too long or grew too large for one record; the message says which."""


class _Timed(Sequence):
    """A list field whose every step of a loop checks the letter's deadline.

    Loops are the only unbounded work a checked letter can do (no call, no calculation), so
    checking here bounds the time even of loops that write nothing.
    """

    def __init__(self, items: Sequence, deadline: float):
        self._items, self._deadline = list(items), deadline

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index):
        return self._items[index]

    def __str__(self) -> str:
        """A list written as a field (``{{ absences }}``): its items, one after the other."""
        return "; ".join(map(str, self._items))

    def __iter__(self) -> Iterator:
        for item in self._items:
            if time.monotonic() > self._deadline:
                raise RenderLimit(_("The letter takes too long to write for one record."))
            yield item


# The body as Jinja: the HTML entities the editor wrote inside {{ }} and {% %} are text again.
_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)


def jinja_source(body_html: str) -> str:
    """Return the Jinja source of a sanitised body (``{{ a &gt; b }}`` becomes ``{{ a > b }}``)."""
    return _TAG.sub(lambda m: html.unescape(m.group(0)).replace("\xa0", " "), body_html)


def problems(source: str, fields: frozenset[str], lists: Mapping[str, frozenset[str]]) -> list[str]:
    """Return what is wrong with a letter's source, in French, each naming its line."""
    try:
        tree = HTML_ENV.parse(source)
    except TemplateSyntaxError as error:
        return [
            _("Line %(line)s: a field or an instruction is badly written (%(detail)s).")
            % {"line": error.lineno, "detail": error.message}
        ]
    checker = _Checker(fields, lists)
    checker.visit(tree, frozenset())
    return checker.found[:MAX_MESSAGES]


class _Checker:
    def __init__(self, fields: frozenset[str], lists: Mapping[str, frozenset[str]]):
        self.fields, self.lists = fields, lists
        self.found: list[str] = []

    def refuse(self, node: nodes.Node, message: str) -> None:
        """Note ``message`` (translated) for the line of ``node``."""
        # A node the parser made itself (a scope) has no line: its first child's is the place.
        line = node.lineno or next((n.lineno for n in node.find_all(nodes.Node) if n.lineno), 1)
        self.found.append(_("Line %(line)s: %(message)s", line=line, message=message))

    def visit(self, node: nodes.Node, loop_items: frozenset[tuple[str, str]]) -> None:
        """Check ``node``; ``loop_items`` are the (loop variable, list field) around it."""
        bound = {name for name, _list in loop_items}
        if type(node) in TAGS:
            self.refuse(node, _("« %(tag)s » is not allowed in a letter.", tag=TAGS[type(node)]))
        elif isinstance(node, nodes.Name):
            known = (
                node.name in self.fields or node.name in bound or (node.name == "loop" and bound)
            )
            if node.ctx != "load" or not known:
                self.refuse(node, _("unknown field « %(name)s ».", name=node.name))
        elif isinstance(node, nodes.Const):
            if not isinstance(node.value, str | int | float | bool | None):
                self.refuse(node, _("this value is not allowed in a letter."))
        elif isinstance(node, nodes.Getattr):
            self._attribute(node, loop_items)
            return
        elif isinstance(node, nodes.Filter | nodes.Test) and (node.dyn_args or node.dyn_kwargs):
            self.refuse(node, _("« %(name)s » is not allowed in a letter.", name=node.name))
        elif isinstance(node, nodes.Filter):
            if node.name not in FILTERS:
                self.refuse(
                    node,
                    _(
                        "the filter « %(name)s » is not allowed; these are: %(allowed)s.",
                        name=node.name,
                        allowed=", ".join(FILTERS),
                    ),
                )
        elif isinstance(node, nodes.For):
            self._loop(node, loop_items)
            return
        elif isinstance(node, nodes.Call):
            self.refuse(node, _("calling a function is not allowed in a letter."))
            return
        elif isinstance(node, nodes.Getitem | nodes.Slice):
            self.refuse(node, _("« […] » is not allowed in a letter: write a field."))
            return
        elif isinstance(node, nodes.BinExpr | nodes.UnaryExpr) and not isinstance(node, LOGIC):
            self.refuse(node, _("calculations are not allowed in a letter."))
            return
        elif isinstance(node, nodes.Literal) and not isinstance(
            node, nodes.Const | nodes.TemplateData
        ):
            self.refuse(node, _("lists and dictionaries are not allowed in a letter."))
            return
        elif not isinstance(node, PLAIN + (nodes.Filter, nodes.Test, nodes.Keyword)):
            self.refuse(
                node, _("« %(what)s » is not allowed in a letter.", what=type(node).__name__)
            )
            return
        for child in node.iter_child_nodes():
            self.visit(child, loop_items)

    def _attribute(self, node: nodes.Getattr, loop_items) -> None:
        owner = node.node
        allowed: frozenset[str] = frozenset()
        if isinstance(owner, nodes.Name):
            bound = dict(loop_items)
            if owner.name in bound:
                allowed = self.lists[bound[owner.name]]
            elif owner.name == "loop" and bound:
                allowed = LOOP_ATTRIBUTES
        if node.attr.startswith("_") or node.attr not in allowed:
            where = owner.name if isinstance(owner, nodes.Name) else "…"
            expression = f"{where}.{node.attr}"
            self.refuse(node, _("« %(expr)s » is not a field of this letter.", expr=expression))

    def _loop(self, node: nodes.For, loop_items) -> None:
        if not (isinstance(node.iter, nodes.Name) and node.iter.name in self.lists):
            self.refuse(
                node,
                _(
                    "a loop goes over a list field only (%(lists)s).",
                    lists=", ".join(sorted(self.lists)),
                )
                or "—",
            )
            return
        if not isinstance(node.target, nodes.Name) or node.recursive:
            self.refuse(
                node,
                _(
                    "a loop names one item, as in %(example)s.",
                    example="{% for absence in absences %}",
                ),
            )
            return
        inner = loop_items | {(node.target.name, node.iter.name)}
        for child in (*node.body, *node.else_):
            self.visit(child, inner)
        if node.test is not None:
            self.visit(node.test, inner)


def check(body: str, subject: str, fields: frozenset[str], lists) -> None:
    """Raise ``LetterRefused`` (by field: body, subject) when a letter cannot be used."""
    errors = {}
    for name, source in (("body", jinja_source(body)), ("subject", subject)):
        found = problems(source, fields, lists)
        if found:
            errors[name] = found
    if errors:
        raise LetterRefused(errors)


@lru_cache(maxsize=64)
def _passes(source: str, fields: frozenset[str], lists: tuple) -> bool:
    """The check of a source, once for the many records a letter is written for."""
    return not problems(source, fields, dict(lists))


@lru_cache(maxsize=64)
def _compiled(source: str, autoescape: bool):
    return (HTML_ENV if autoescape else TEXT_ENV).from_string(source)


def render(
    source: str,
    values: Mapping[str, object],
    lists: Mapping[str, frozenset[str]],
    *,
    autoescape: bool = True,
    seconds: float = RENDER_SECONDS,
    max_chars: int = MAX_OUTPUT_CHARS,
) -> str:
    """Return the checked ``source`` written for ``values``; raise ``RenderLimit`` past a limit.

    ``LetterRefused`` when the source does not pass the check (a letter saved before a rule).
    """
    if not _passes(source, frozenset(values), tuple(sorted(lists.items()))):
        raise LetterRefused(problems(source, frozenset(values), lists))
    deadline = time.monotonic() + seconds
    context = {
        name: _Timed(value, deadline) if name in lists else value for name, value in values.items()
    }
    parts, size = [], 0
    try:
        for part in _compiled(source, autoescape).generate(context):
            size += len(part)
            if size > max_chars:
                raise RenderLimit(_("The letter is too long for one record."))
            if time.monotonic() > deadline:
                raise RenderLimit(_("The letter takes too long to write for one record."))
            parts.append(part)
    except (SecurityError, UndefinedError, TypeError) as error:
        reason = {"reason": error}
        raise RenderLimit(_("The letter could not be written: %(reason)s") % reason) from error
    return "".join(parts)
