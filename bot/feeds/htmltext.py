"""Plain text from feed HTML: paragraphs, no markup, entities decoded once more, no soft hyphens.

A single ``<br>`` inside running text is a line break the layout wanted, not the end of a
sentence: when the line before it does not end a sentence and either the next one does not
start with a capital ("struck<br>the port") or the line before is as long as wrapped text is
(a CMS breaking lines at a width), it is a space. Otherwise (a list of short lines, "Kursk:
…<br>Odesa: …"), and for two in a row or a block element, the paragraph ends.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from bot.identity import clean_text

_BLOCK = frozenset(
    "p div li ul ol dl dt dd h1 h2 h3 h4 h5 h6 blockquote pre table tr hr section article "
    "header footer aside main figure figcaption address details summary".split()
)
# never words of the report; all of these have a required end tag, so skipping is balanced
_SKIP = frozenset(
    "script style iframe form nav noscript template svg math object button select textarea "
    "title audio video canvas".split()
)
_CELL = frozenset({"td", "th"})
_SENTENCE_END = re.compile(r"[.!?…:;]['\"”’»)\]]*\s*$")
_WRAPPED = 50  # characters: a line this long that ends mid-sentence was wrapped, not listed


class _TextExtractor(HTMLParser):
    """Collects text blocks; block tags end a paragraph, skipped tags drop their content."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self._current: list[str] = []
        self._skipping: dict[str, int] = {}
        self._after_br = False  # a <br> came, and no words since
        self._line_start = 0  # where the current line starts in _current
        self._last_line = 0  # characters in the line the last <br> ended

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self._skipping[tag] = self._skipping.get(tag, 0) + 1
        elif tag == "br":
            self._line_break()
        elif tag in _BLOCK:
            self.flush()
        elif tag in _CELL:
            self._current.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self._line_break()
        elif tag in _BLOCK:  # <hr/>; a self-closed <iframe/> has nothing to skip
            self.flush()

    def handle_endtag(self, tag: str) -> None:
        if self._skipping.get(tag):
            self._skipping[tag] -= 1
        elif tag in _BLOCK:
            self.flush()
        elif tag in _CELL:
            self._current.append(" ")

    def handle_data(self, data: str) -> None:
        if any(self._skipping.values()):
            return
        words = data.lstrip()
        if self._after_br and words:
            self._after_br = False
            if words[0].isupper() and self._last_line < _WRAPPED:
                self.flush()  # a short line, then a capital: a list of lines, not running text
            else:
                self._current.append(" ")
        self._current.append(data)

    def _line_break(self) -> None:
        if self._after_br or _SENTENCE_END.search("".join(self._current[-3:])):
            self.flush()  # <br><br>, or a line that ended its sentence: a paragraph ends
        else:
            self._after_br = True  # decided by the next words
            self._last_line = len("".join(self._current[self._line_start :]).strip())
            self._line_start = len(self._current)

    def flush(self) -> None:
        text = " ".join("".join(self._current).split())
        if text:
            self.blocks.append(text)
        self._current.clear()
        self._after_br = False
        self._line_start = 0


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment or page: paragraphs separated by "\\n\\n", no markup."""
    if "<" not in html and "&" not in html:
        return plain_to_text(html)
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    extractor.flush()
    return clean_text("\n\n".join(extractor.blocks))


def plain_to_text(value: str) -> str:
    """Plain text as paragraphs: blank lines separate them, other whitespace is one space."""
    blocks = (" ".join(block.split()) for block in re.split(r"\n\s*\n", clean_text(value)))
    return "\n\n".join(block for block in blocks if block)


def to_text(value: str, kind: str) -> str:
    """`value` of MIME type `kind` (feedparser's content types) as plain text."""
    return html_to_text(value) if "html" in kind else plain_to_text(value)
