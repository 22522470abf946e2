"""The e-mail body: sanitise the editor's HTML with nh3 and derive its plain-text part."""

from __future__ import annotations

import re
from html import escape
from html.parser import HTMLParser

import nh3

# What the editor produces, and nothing that runs or restyles: no script, no style, no on* handler,
# no image (remote images track readers), no class or style attribute (CSS tricks hide text).
ALLOWED_TAGS = {
    "p",
    "br",
    "div",
    "span",
    "b",
    "strong",
    "i",
    "em",
    "u",
    "s",
    "strike",
    "sub",
    "sup",
    "ul",
    "ol",
    "li",
    "a",
    "h1",
    "h2",
    "h3",
    "blockquote",
    "hr",
    "pre",
    "code",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}}
URL_SCHEMES = {"http", "https", "mailto"}
_TAG = re.compile(r"<[a-zA-Z!/]")


def sanitize_html(html: str) -> str:
    """Return ``html`` with only harmless tags, attributes and link schemes left."""
    if not html or not html.strip():
        return ""
    if not _TAG.search(html):
        html = text_to_html(html)
    cleaned = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        clean_content_tags={"script", "style", "iframe", "object", "embed", "template", "noscript"},
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
    ).strip()
    # An editor left with "<p><br></p>" holds no text: treat it as empty.
    return cleaned if html_to_text(cleaned).strip() else ""


def text_to_html(text: str) -> str:
    """Return plain ``text`` as HTML paragraphs (for a body typed without the editor)."""
    paragraphs = re.split(r"\r?\n\s*\r?\n", text.strip())
    return "".join(
        "<p>" + "<br>".join(escape(line) for line in p.splitlines()) + "</p>" for p in paragraphs
    )


class _TextMaker(HTMLParser):
    BLOCKS = {"p", "div", "h1", "h2", "h3", "blockquote", "pre", "ul", "ol", "hr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[str | None] = []
        self.lists: list[list] = []  # for each open list: [ordered, counter]

    def handle_starttag(self, tag, attrs):
        if tag in self.BLOCKS:
            self.parts.append("\n")
        if tag in ("ul", "ol"):
            self.lists.append([tag == "ol", 0])
        elif tag == "li":
            self.parts.append("\n")
            indent = "  " * max(len(self.lists) - 1, 0)
            if self.lists and self.lists[-1][0]:
                self.lists[-1][1] += 1
                self.parts.append(f"{indent}{self.lists[-1][1]}. ")
            else:
                self.parts.append(f"{indent}- ")
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "hr":
            self.parts.append("----------\n")
        elif tag == "a":
            self.links.append(dict(attrs).get("href"))

    def handle_endtag(self, tag):
        if tag == "a" and self.links:
            href = self.links.pop()
            if href and not href.startswith("mailto:"):
                self.parts.append(f" <{href}>")
        elif tag in ("ul", "ol") and self.lists:
            self.lists.pop()
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data):
        self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """Return the plain-text part of an e-mail whose HTML part is ``html``."""
    maker = _TextMaker()
    maker.feed(html or "")
    maker.close()
    lines = [line.rstrip() for line in "".join(maker.parts).splitlines()]
    text = "\n".join(
        line[1:] if line.startswith(" ") and not line.startswith("  ") else line for line in lines
    )
    return re.sub(r"\n{3,}", "\n\n", text).strip()
