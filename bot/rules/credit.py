"""Crediting hits to sentences: which terms occur in which sentence (and at which word).

Only for candidate items (see matcher.py): the text is split into sentences once, and each
hit of a wanted term is credited to its sentence. For ASCII text the field scan's hits are
reused (less those running across sentences); otherwise the sentences are joined with a
boundary word no term contains and scanned again. Regex terms are searched sentence by sentence.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import compress
from operator import itemgetter
from typing import Any, NamedTuple

from bot.rules.language import Term
from bot.rules.text import (
    BOUNDARY,
    SENTENCE_JOINER,
    WORD,
    canonical,
    has_astral,
    sentence_spans,
    sentence_word_starts,
)
from bot.rules.windows import Sentence


def _word_starts(text: str, spans: list[tuple[int, int, int]]) -> list[int] | None:
    """The canonical word number each sentence starts at, then the field's word count; None
    when words cannot be told without canonicalising (see Credit.reuse_hits)."""
    if text.isascii():
        return sentence_word_starts(text, spans)
    if has_astral(text) or "\u02bc" in text or not unicodedata.is_normalized("NFKC", text):
        return None
    starts, count = [0], 0
    for start, end, _ in spans:
        count += len(WORD.findall(text, start, end))
        starts.append(count)
    return starts


class Scan(NamedTuple):
    """A field's scan: terms found, its canonical text and the automaton's (end, key) hits."""

    found: set[int]
    canon: str
    hits: list[tuple[int, int]]


@dataclass
class Credit:
    """The Rulebook's key tables, and crediting hits of its terms to sentences with them."""

    terms: list[Term]
    automaton: Any  # an ahocorasick.Automaton over term keys, or None
    key_lengths: list[int]  # by a key's first term id: its length
    key_ids: list[tuple[int, ...]]  # by a key's first term id: every term id of that key
    first_of: dict[int, int]  # term id -> the first term id of its key (shared keys only)
    cased: set[int]  # case-sensitive term ids
    regexes: list[tuple[int, Any]]  # (term id, compiled RE2)
    regex_set: Any  # one RE2 set of all regexes, or None
    hits_reusable: bool  # may a field scan's hits be credited without a second scan?

    def analyse(
        self, text: str, field_name: str, by_words: bool, wanted: frozenset[int], scan: Scan
    ) -> list[Sentence]:
        """Sentences of one field holding `wanted` terms, with those terms (only for candidate
        items). Windows only ever consist of sentences with hits, so others are left out."""
        if field_name == "title":
            spans = [(0, len(text), 0)] if text.strip() else []
        else:
            spans = sentence_spans(text)
        if self.cased:  # a case-sensitive term the scan found absent is never credited
            wanted = wanted - (self.cased - scan.found)
        hits: dict[int, dict[int, list[int]]] = defaultdict(dict)  # sentence -> term -> words
        firsts = [0] * len(spans)  # each sentence's first word number, for word windows
        # the field scan's hits when they are sure to be the same, else a scan of the sentences
        if (
            spans
            and self.automaton is not None
            and not self.reuse_hits(hits, firsts, text, scan, spans, by_words, wanted)
        ):
            joined = SENTENCE_JOINER.join(text[a:b] for a, b, _ in spans)
            self.hits_in(hits, firsts, joined, by_words, wanted)
        if spans and self.regexes:
            self._regex_hits(hits, firsts, spans, text, by_words, wanted)
        return [Sentence(field_name, *spans[n], firsts[n], hits[n], number=n) for n in sorted(hits)]

    def hits_in(
        self,
        hits: dict[int, dict[int, list[int]]],
        firsts: list[int],
        joined: str,
        by_words: bool,
        wanted: frozenset[int],
    ) -> None:
        """One scan of the joined sentences; each hit is credited to its sentence (and its
        word number, when a rule counts words)."""
        canon = canonical(joined)
        marks = [m.start() for m in re.finditer(BOUNDARY, canon)]
        cased = canonical(joined, keep_case=True) if self._case_matters(wanted) else canon
        spaces = _SpaceCounter(canon)
        if by_words:  # a sentence's first word: spaces up to it, less the boundary tokens
            counter = _SpaceCounter(canon)
            for n, mark in enumerate(marks, 1):
                firsts[n] = counter.before(mark + 2) - 1 - n
        lengths, key_ids = self.key_lengths, self.key_ids
        for end, key in self.automaton.iter(canon):
            ids = key_ids[key]
            if wanted.isdisjoint(ids):
                continue
            start = end - lengths[key] + 1
            index = bisect.bisect_left(marks, start)
            word = spaces.before(start + 1) - 1 - index if by_words else 0
            self._credit(hits, index, word, ids, wanted, (cased, canon, start))

    def reuse_hits(
        self,
        hits: dict[int, dict[int, list[int]]],
        firsts: list[int],
        text: str,
        scan: Scan,
        spans: list[tuple[int, int, int]],
        by_words: bool,
        wanted: frozenset[int],
    ) -> bool:
        """What _hits_in finds, from the field scan's hits instead of a second canonicalising
        and scan of the joined sentences; False (and nothing done) when they might differ.

        Sentences meet at whitespace, so the canonical text's words are those of its sentences
        in turn: the joined text only adds a boundary word between sentences. Its hits are the
        field's, less those running from one sentence into the next. Counting each sentence's
        words without canonicalising it is exact for ASCII text and for NFKC-normal text of the
        Basic Multilingual Plane without the Ukrainian apostrophe (Cyrillic feeds); other text
        is scanned again.
        """
        if not (self.hits_reusable and BOUNDARY not in text):
            return False
        starts = _word_starts(text, spans)  # and, last, the field's word count
        if starts is None:
            return False
        canon = scan.canon
        if starts[-1] != canon.count(" ") - 1:
            return False  # a word split between sentences: not expected, but then not equal
        if by_words:
            firsts[:] = starts[:-1]
        cased = canonical(text, keep_case=True) if self._case_matters(wanted) else canon
        lengths, key_ids, spaces = self.key_lengths, self.key_ids, _SpaceCounter(canon)
        for end, key in self._wanted_hits(scan.hits, wanted):
            start = end - lengths[key] + 1
            word = spaces.before(start + 1) - 1  # the field's word number of its first word
            index = bisect.bisect_right(starts, word) - 1
            if word + canon.count(" ", start + 1, end) >= starts[index + 1]:
                continue  # its last word is in the next sentence
            credited = word if by_words else 0
            self._credit(hits, index, credited, key_ids[key], wanted, (cased, canon, start))
        return True

    def _credit(
        self,
        hits: dict[int, dict[int, list[int]]],
        sentence: int,
        word: int,
        term_ids: tuple[int, ...],
        wanted: frozenset[int],
        where: tuple[str, str, int],  # cased and canonical text, and the hit's start in them
    ) -> None:
        """Credit one hit of a key to the wanted terms it stands for, if written in their case."""
        for term_id in term_ids:
            if term_id in wanted and (
                term_id not in self.cased or self._case_fits(term_id, *where)
            ):
                hits[sentence].setdefault(term_id, []).append(word)

    def _wanted_hits(
        self, hits: list[tuple[int, int]], wanted: frozenset[int]
    ) -> Iterator[tuple[int, int]]:
        """The hits of keys that wanted terms have, picked at C speed (most hits are not)."""
        keys: frozenset[int] | set[int] = wanted  # a key's value is its first term's id
        if self.first_of and (others := self.first_of.keys() & wanted):
            keys = wanted.union(map(self.first_of.__getitem__, others))
        return compress(hits, map(keys.__contains__, map(itemgetter(1), hits)))

    def _case_matters(self, wanted: frozenset[int]) -> bool:
        """Is a case-sensitive term wanted? (Only then is the cased text worth building.)"""
        return not self.cased.isdisjoint(wanted)

    def _case_fits(self, term_id: int, cased: str, canon: str, start: int) -> bool:
        """Is this very occurrence written in the term's case?"""
        key = self.terms[term_id].cased_key
        if len(cased) == len(canon):  # nearly always: then positions agree
            return cased.startswith(key, start)
        return key in cased  # case folding changed lengths (ß, ǰ): judge the whole field

    def _regex_hits(
        self,
        hits: dict[int, dict[int, list[int]]],
        firsts: list[int],
        spans: list[tuple[int, int, int]],
        text: str,
        by_words: bool,
        wanted: frozenset[int],
    ) -> None:
        """Regex terms, sentence by sentence on the NFKC text (so positions stay put)."""
        numbers = [n for n, (term_id, _) in enumerate(self.regexes) if term_id in wanted]
        if not numbers:
            return
        for n, (start, end, _) in enumerate(spans):
            chunk = unicodedata.normalize("NFKC", text[start:end])
            for term_id, regex in self._regexes_in(chunk, numbers):
                word, last = firsts[n], 0
                for m in regex.finditer(chunk):
                    if by_words:  # counted piecewise: never rescan from the sentence start
                        word += len(canonical(chunk[last : m.start()]).split())
                        last = m.start()
                    hits[n].setdefault(term_id, []).append(word)

    def _regexes_in(self, chunk: str, numbers: list[int]) -> list[tuple[int, Any]]:
        """Those of the regexes (by number, ascending) that occur in `chunk`, with their term
        ids: one set scan rules most of them out, rather than one search each."""
        if self.regex_set is not None:
            found = set(self.regex_set.Match(chunk) or ())
            numbers = [n for n in numbers if n in found]
        return [self.regexes[n] for n in numbers]


class _SpaceCounter:
    """Spaces in text[:pos], for positions mostly moving forward: linear over a whole scan."""

    def __init__(self, text: str) -> None:
        self.text, self.pos, self.count = text, 0, 0

    def before(self, pos: int) -> int:
        if pos >= self.pos:
            self.count += self.text.count(" ", self.pos, pos)
        else:
            self.count -= self.text.count(" ", pos, self.pos)
        self.pos = pos
        return self.count
