"""Text normalisation: folding (NFKC, case, accents), canonical token strings, sentences.

Matching never looks at raw text. A text is *canonicalised* into its words, folded and joined
by single spaces, with a space at each end: ``" china s pla began live fire drills "``.
Punctuation, hyphens, line breaks and runs of whitespace all become one space, so a phrase
written ``live-fire`` (canonically ``" live fire "``) is found in "live fire", "live-fire" or
"live\\nfire", and a whole-word test is a plain substring test with the spaces included.

Folding is NFKC, then case folding, then accents removed (NFD without non-spacing marks), in
any script: "Kýiv", "KYIV" and "kyiv" fold alike, and so do Cyrillic "й" and "и".

Invisible characters (zero-width space and joiners, word joiner, soft hyphen, BOM, bidi
controls such as the right-to-left override, tag characters) are removed, not turned into a
space: "Kur\u200bsk" is "Kursk". `strip_invisible` does the same for text that is shown.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

# Joins sentences before canonicalising; it survives as a word of its own that no term
# contains, so phrases never match across it (ASCII BEL: never in report text, not space
# to str.split, and ASCII keeps str.translate on its fast path).
BOUNDARY = "\x07"
SENTENCE_JOINER = f" {BOUNDARY} "


# Unicode's format characters (category Cf, as of Unicode 15) and the Hangul fillers: they
# draw nothing, so a word written with one inside must read, match and show as without it.
# A test checks that the running Python knows no other Cf character.
_INVISIBLE = re.compile(
    "[\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160\u180e"
    "\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\u3164\ufeff\uffa0"
    "\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]+"
)


def strip_invisible(text: str) -> str:
    """The text without invisible characters (format characters and fillers; see above)."""
    if text.isascii() or (_printable_apart_from_spacing(text) and not _has_filler(text)):
        return text  # checked in C: several times faster than the regex's pass
    return _INVISIBLE.sub("", text)


def _printable_apart_from_spacing(text: str) -> bool:
    # format characters are not printable, nor is whitespace (which never hides one)
    return text.replace("\n", " ").isprintable() or "".join(text.split()).isprintable()


# the Hangul fillers are letters (printable), so they are looked for one by one
_FILLERS = ("\u115f", "\u1160", "\u3164", "\uffa0")


def _has_filler(text: str) -> bool:
    return any(filler in text for filler in _FILLERS)


@lru_cache(maxsize=1)
def _canonical_table() -> dict[int, str | None]:
    """str.translate table: marks and invisibles vanish, anything not a letter/digit is a space."""
    table: dict[int, str | None] = {}
    ranges = [(0, 0x10000), (0x1F000, 0x1FB00)]  # the BMP, and emoji (often glued to words)
    for low, high in ranges:
        for code in range(low, high):
            char = chr(code)
            if _INVISIBLE.match(char):  # before the letter test: Hangul fillers are letters
                table[code] = None
            elif not char.isalnum():
                table[code] = None if unicodedata.category(char) == "Mn" else " "
    for code in (*range(0x11000, 0x1D200), *range(0xE0000, 0xE0080)):  # astral invisibles
        if _INVISIBLE.match(chr(code)):
            table[code] = None
    table[ord("_")] = " "
    table[0x02BC] = " "  # the Ukrainian apostrophe is a letter to Unicode, a separator to us
    del table[ord(BOUNDARY)]  # kept as it is: one-to-one mappings keep translate fast
    return table


def canonical(text: str, *, keep_case: bool = False) -> str:
    """The text's words, folded, joined by single spaces, with a space at both ends."""
    if text.isascii():  # NFKC, NFD and accents change nothing in ASCII
        table = _ASCII_WORDS if keep_case else _ASCII_FOLDED_WORDS
        words = text.encode("ascii").translate(table).split()
        return " " + b" ".join(words).decode("ascii") + " " if words else " "
    text = unicodedata.normalize("NFKC", text)
    if not keep_case:
        text = text.casefold()
    if not text.isascii():
        text = unicodedata.normalize("NFD", text)
        words = _words_of_bmp(text)
    else:
        words = text.translate(_canonical_table()).split()
    return " " + " ".join(words) + " " if words else " "


def _ascii_table(fold: bool) -> bytes:
    """bytes.translate table for ASCII text (a byte table is several times faster than
    str.translate): letters and digits kept (lowered when folding), BOUNDARY kept, anything
    else a space, as _canonical_table does."""
    out = bytearray(b" " * 256)
    for code in range(128):
        char = chr(code)
        if char.isalnum() or char == BOUNDARY:
            out[code] = ord(char.lower()) if fold else code
    return bytes(out)


_ASCII_WORDS = _ascii_table(fold=False)
_ASCII_FOLDED_WORDS = _ascii_table(fold=True)


def _words_of_bmp(text: str) -> list[str]:
    """What translating with _canonical_table and splitting gives. Once text is not ASCII,
    translate looks every character up in the table, ten times slower; replacing each of
    the few distinct characters the table changes, one str.replace (C speed) each, gives the
    same text."""
    table = _canonical_table()
    changed = [c for c in set(text) if ord(c) in table and c != " "]
    if len(changed) > _MAX_REPLACED:
        return text.translate(table).split()
    for char in changed:
        text = text.replace(char, table[ord(char)] or "")
    return text.split()


_MAX_REPLACED = 48  # beyond this many distinct characters, one translate pass is cheaper


WORD = re.compile(r"[^\W_]+")  # a run of letters and digits: a word as shown and counted


def has_astral(text: str) -> bool:
    """Does the text hold a character beyond the Basic Multilingual Plane? (An encoding in
    C, many times faster than max() over the characters.)"""
    return not text.isascii() and len(text.encode("utf-16-le", "surrogatepass")) > 2 * len(text)


class Token(NamedTuple):
    """One word of a display text: where it is, and its folded form."""

    start: int
    end: int
    folded: str
    original: str


def tokens(text: str) -> list[Token]:
    """Words of `text` with their character spans (for highlighting, not for the hot path)."""
    if text.isascii():
        return [Token(m.start(), m.end(), m[0].lower(), m[0]) for m in WORD.finditer(text)]
    out = []
    for m in WORD.finditer(text):
        # a word only splits further in odd cases (e.g. NFKC of "½"): keep the whole span
        out += [Token(m.start(), m.end(), part, m[0]) for part in _folded_word(m[0])]
    return out


@lru_cache(maxsize=65536)
def _folded_word(word: str) -> tuple[str, ...]:
    """A word's canonical parts, kept: words repeat across the sentences quoted in snippets."""
    return tuple(canonical(word).split())


@dataclass(frozen=True)
class Sentence:
    """A sentence of a text: character span and the paragraph it belongs to."""

    start: int
    end: int
    paragraph: int


_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n\s*")
# A sentence ends at . ! ? … (plus closing quotes/brackets) followed by whitespace, at CJK
# end marks, or at line breaks: `[.!?…]+["'”’»)\]]*\s+|[。！？]+[」』”’）)]*\s*|\n+`.
# Written as one character class, then the rest of the alternative that class character
# starts (told by a lookbehind on it), because `re` only skips ahead quickly when a pattern
# opens with a plain character class: the alternation alone was tried at every position,
# seven times slower on a whole article. It matches exactly the same spans.
_SENTENCE_END = re.compile(
    r"[.!?…。！？\n]"
    r"(?:(?<=[.!?…])[.!?…]*[\"'”’»)\]]*\s+|(?<=[。！？])[。！？]*[」』”’）)]*\s*|(?<=\n)\n*)"
)
_DOTTED = re.compile(r"(?:\w\.)+\w")  # "U.S", "e.g": the last dot follows
_ABBREVIATIONS = frozenset(
    # English: titles and ranks, months, companies, and the like
    "mr mrs ms dr st mt no vs etc gen lt col maj capt sgt adm cmdr gov sen rep pres prof "
    "jan feb mar apr jun jul aug sep sept oct nov dec inc ltd co corp dept est approx fig "
    "jr sr rev hon ave blvd brig cpl pvt cdr ft dist min ret op "
    # Russian and Ukrainian (folded like the text: й = и): year, street, editor, article,
    # village, thousand, million, for example, see ...
    "ул г гг им тов обл р рр ред ст пос пгт смт с д вул просп пр див напр см тыс тис млн "
    "млрд руб грн коп т др ин пп".split()
)
# letters before a full stop that make it a sentence end for sure: longer than any
# abbreviation (casefold never shortens a word), an initial or a dotted "U.S"
_LONG_WORD = max(map(len, _ABBREVIATIONS)) + 1
_CLAUSE_MARKS = (",", ";", ":")


def _sure_end_pattern() -> re.Pattern[str]:
    """Full stops that end a sentence whatever precedes the word before them (so found by
    one regex): after a word too long to be an abbreviation, or after a space and a plain
    word of 2 to 6 letters that is none (an initial, a dotted "U.S" or a word after a quote
    or bracket is left to `_is_sentence_end`), and not followed by , ; or :."""
    letters = "a-zA-Zа-яА-ЯёЁіІїЇєЄґҐ"  # casefold is lower() for these, as (?i) matches
    after_word = [rf"(?<=[^\W\d_]{{{_LONG_WORD}}}\.)"]
    for size in range(2, _LONG_WORD):
        shaped = rf"(?<= [{letters}]{{{size}}}\.)"
        if same_size := sorted(a for a in _ABBREVIATIONS if len(a) == size):
            shaped += rf"(?<!(?i: (?:{'|'.join(same_size)})\.))"
        after_word.append(shaped)
    return re.compile(
        r"\.(?:" + "|".join(after_word) + r")[.!?…]*[\"'”’»)\]]*(?P<gap>\s+)(?=[^\s,;:]|\Z)"
    )


_SURE_END = _sure_end_pattern()
_SHORT_LINE = 60
_LIST_ITEM = re.compile(r"[-•*–—▪►]\s|\d{1,2}[.)]\s|\(?[a-zа-я][.)]\s")


def sentences(text: str) -> list[Sentence]:
    """Split into sentences, never across paragraphs (blank lines)."""
    return [Sentence(*span) for span in sentence_spans(text)]


def sentence_spans(text: str) -> list[tuple[int, int, int]]:
    """The sentences as (start, end, paragraph number) tuples (cheaper than `sentences`)."""
    out: list[tuple[int, int, int]] = []
    for number, (p_start, p_end) in enumerate(_paragraph_spans(text)):
        start = p_start
        # most sentences end at a full stop after a plain word: those ends are found by one
        # regex, and only the stretches holding some other possible end are judged mark by mark
        for m in _SURE_END.finditer(text, p_start, p_end):
            if _SENTENCE_END.search(text, start, m.start()) is None:
                gap = m.start("gap")
                if start < gap and not text[start].isspace():  # as nearly always
                    out.append((start, gap, number))
                else:
                    _append_stripped(out, text, start, gap, number)
            else:
                _split_stretch(out, text, start, m.end(), number)
            start = m.end()
        _split_stretch(out, text, start, p_end, number)
    return out


def _split_stretch(
    out: list[tuple[int, int, int]], text: str, start: int, stop: int, number: int
) -> None:
    """The sentences of text[start:stop], judging each possible end (`start` begins one)."""
    for m in _SENTENCE_END.finditer(text, start, stop):
        if _is_sentence_end(text, m, start):
            _append_stripped(out, text, start, m.end(), number)
            start = m.end()
    _append_stripped(out, text, start, stop, number)


# ASCII letters and digits to "a", anything else to a space: a word starts at each " a"
_WORD_MARKS = bytes(ord("a") if chr(c).isalnum() else ord(" ") for c in range(256))


def sentence_word_starts(text: str, spans: list[tuple[int, int, int]]) -> list[int]:
    """For ASCII text without BOUNDARY: the canonical word number each sentence starts at,
    then the number of words in all (in ASCII, a word is a run of letters and digits)."""
    marks = text.encode("ascii").translate(_WORD_MARKS)  # one to one: positions stay put
    starts, count = [0], 0
    for start, end, _ in spans:  # words counted where they start, with no copy or split
        count += marks.count(b" a", start, end) + (marks[start] == ord("a"))
        starts.append(count)
    return starts


def _paragraph_spans(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for m in _PARAGRAPH_BREAK.finditer(text):
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    return [s for s in spans if text[s[0] : s[1]].strip()]


def _is_sentence_end(text: str, m: re.Match[str], sentence_start: int) -> bool:
    """Tell a full stop from an abbreviation, an initial or a decimal point.

    Case is not consulted after a full stop, so that matching never depends on it.
    """
    mark = text[m.start()]
    if mark == "\n":
        return _line_ends_sentence(text, sentence_start, m.start(), m.end())
    if text[m.end() : m.end() + 1] in _CLAUSE_MARKS and m.end() < len(text):
        return False
    return mark != "." or _ends_with_a_word(text, sentence_start, m.start())


def _ends_with_a_word(text: str, sentence_start: int, stop: int) -> bool:
    """Is the full stop at `stop` after a word, not an initial, abbreviation or "U.S"?"""
    # the usual case, decided at once: too many letters for an initial or abbreviation
    if stop - sentence_start >= _LONG_WORD and text[stop - _LONG_WORD : stop].isalpha():
        return True
    word_start = max(text.rfind(" ", sentence_start, stop), sentence_start - 1) + 1
    last = text[word_start:stop].lstrip("(\"'“‘«").casefold()
    if len(last) == 1 and last.isalpha():
        return False  # an initial: "J. Smith", "U.S."
    return last not in _ABBREVIATIONS and not ("." in last and _DOTTED.fullmatch(last))


def _line_ends_sentence(text: str, sentence_start: int, line_end: int, next_line: int) -> bool:
    """A line break ends a sentence after end punctuation, or before a list item; otherwise it
    is a wrapped line (never judged by letter case, so matching never depends on case)."""
    line_start = max(sentence_start, text.rfind("\n", 0, line_end) + 1)
    line = text[line_start:line_end].rstrip()
    if not line:
        return False
    if line[-1] in ".!?…:;\"'”’»)。！？":
        return True
    if _LIST_ITEM.match(text, next_line):
        return True
    # a short line before a longer one is a headline or a dateline; a hard-wrapped line is
    # about as long as the next, or longer (the last line of a paragraph is the short one)
    following = text.find("\n", next_line)
    following = len(text) if following == -1 else following
    return len(line) < _SHORT_LINE and following - next_line > len(line)


def _append_stripped(
    out: list[tuple[int, int, int]], text: str, start: int, end: int, par: int
) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start < end:
        out.append((start, end, par))


def is_text(data: bytes) -> bool:
    """True when bytes look like text we can read (UTF-8, no NUL bytes)."""
    if b"\x00" in data[:65536]:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
