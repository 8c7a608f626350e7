"""Snippets: the sentences that made a rule fire, trimmed, with the matched terms marked."""

from __future__ import annotations

import re
from collections import defaultdict
from operator import attrgetter
from typing import Any, NamedTuple

from bot.models import Snippet
from bot.rules.language import Term, compile_regex
from bot.rules.text import Token, canonical, tokens

MAX_SNIPPETS = 3
SNIPPET_CHARS = 300
ELLIPSIS = "…"


class Evidence(NamedTuple):
    """A sentence of a field that holds some of a rule's terms (a NamedTuple: every rule that
    fires makes several, and a frozen dataclass costs several times as much to build)."""

    field: str
    start: int
    end: int
    terms: tuple[Term, ...]


Indexed = tuple[list[Token], dict[str, list[int]]]
Cache = dict[tuple[Any, ...], Any]  # per item: sentences' searchable forms and term spans


def make_snippets(
    evidence: list[Evidence],
    texts: dict[str, str],
    cache: Cache | None = None,
) -> tuple[Snippet, ...]:
    """At most three snippets, in the order they appear in the report: the best sentences
    (most distinct terms, then earliest), never the same sentence twice, never the headline
    (the alert shows it already) nor a sentence that repeats it.

    `cache` keeps each sentence's words between the rules of one item (several rules often
    quote the same sentence).
    """
    cache = {} if cache is None else cache
    out = []
    for ev in _chosen(evidence, texts, cache):
        sentence = texts[ev.field][ev.start : ev.end]
        spans: list[tuple[int, int]] = []
        for term in ev.terms:
            # kept for the item: other rules may quote this sentence for this term (terms are
            # the Rulebook's own objects, so within one item their identity names them)
            key = ("spans", ev.field, ev.start, id(term))
            found = cache.get(key)
            if found is None:
                found = cache[key] = term_spans(sentence, term, _searchable(sentence, ev, cache))
            spans += found
        out.append(trim(sentence, _merge(spans)))
    return tuple(out)


def _searchable(sentence: str, ev: Evidence, cache: Cache) -> str | Indexed:
    """The sentence lowered (ASCII) or its words indexed, once per item."""
    key = ("searchable", ev.field, ev.start)
    if key not in cache:
        cache[key] = sentence.lower() if sentence.isascii() else index_words(sentence)
    return cache[key]


def _chosen(evidence: list[Evidence], texts: dict[str, str], cache: Cache) -> list[Evidence]:
    """The best MAX_SNIPPETS distinct sentences of the content, in text order."""
    title = texts.get("title", "")
    seen = {_same(title)} if title else set()
    chosen = []
    for ev in sorted(evidence, key=_rank):
        if ev.field != "content":
            continue
        key = cache.get(("same", ev.start))  # several rules often quote the same sentence
        if key is None:
            key = cache[("same", ev.start)] = _same(texts["content"][ev.start : ev.end])
        if key not in seen:
            seen.add(key)
            chosen.append(ev)
            if len(chosen) == MAX_SNIPPETS:
                break
    return sorted(chosen, key=_START)


def _same(sentence: str) -> str:
    """What two sentences share when one repeats the other (case and spacing aside)."""
    return " ".join(sentence.split()).casefold()


_START = attrgetter("start")


def _rank(ev: Evidence) -> tuple[int, int]:
    return -len(ev.terms), ev.start


def index_words(text: str) -> Indexed:
    """The words of `text`, and where each folded word occurs."""
    words = tokens(text)
    starts: dict[str, list[int]] = defaultdict(list)
    for position, word in enumerate(words):
        starts[word.folded].append(position)
    return words, starts


def find_terms(text: str, terms: tuple[Term, ...]) -> list[tuple[int, int]]:
    """Character spans of every occurrence of `terms` in `text`, merged and sorted."""
    searchable = text.lower() if text.isascii() else index_words(text)
    return _merge([span for term in terms for span in term_spans(text, term, searchable)])


def term_spans(text: str, term: Term, searchable: str | Indexed) -> list[tuple[int, int]]:
    """Character spans of `term` in `text`; `searchable` is the text lowered when it is ASCII
    (folding is then lowering, the same length, so words are found in place, without
    tokenising), else its words indexed."""
    if term.kind == "regex":
        found = compile_regex(term.key).finditer(text)
        return [m.span() for m in found if m.end() > m.start()]
    if isinstance(searchable, str):
        return [
            (start, end)
            for start, end in _ascii_occurrences(
                searchable, term.key.split(), term.kind == "prefix"
            )
            if not term.case_sensitive or _ascii_case_fits(text[start:end], term)
        ]
    return _word_spans(*searchable, term)


_SEPARATOR_RUN = re.compile(r"[\W_]+")
_WORD_RUN = re.compile(r"[^\W_]*")


def _ascii_occurrences(lowered: str, words: list[str], prefix: bool) -> list[tuple[int, int]]:
    """Where `words` occur as whole words (a wildcard's last word as a word start), left to
    right and never overlapping, as one regex scan per term would find them: compiling a
    regex per term cost far more than the search itself, and terms are many."""
    found: list[tuple[int, int]] = []
    first = words[0]
    start = lowered.find(first)
    while start != -1:
        end = _ascii_match_at(lowered, start, words, prefix)
        if end is None:
            start = lowered.find(first, start + 1)
        else:
            found.append((start, end))
            start = lowered.find(first, end)
    return found


def _ascii_match_at(lowered: str, start: int, words: list[str], prefix: bool) -> int | None:
    """The end of the occurrence of `words` beginning at `start`, if there is one."""
    if start and lowered[start - 1].isalnum():
        return None  # inside a word
    pos = start
    for number, word in enumerate(words):
        if number:  # words are apart by a run of anything but letters and digits
            gap = _SEPARATOR_RUN.match(lowered, pos)
            if gap is None:
                return None
            pos = gap.end()
        if not lowered.startswith(word, pos):
            return None
        pos += len(word)
    if prefix:  # the wildcard takes the rest of the word
        run = _WORD_RUN.match(lowered, pos)
        return run.end() if run else pos
    return None if pos < len(lowered) and lowered[pos].isalnum() else pos


def _ascii_case_fits(written: str, term: Term) -> bool:
    found = canonical(written, keep_case=True).strip()
    want = term.cased_key.strip()
    return found.startswith(want) if term.kind == "prefix" else found == want


def _word_spans(
    words: list[Token], starts: dict[str, list[int]], term: Term
) -> list[tuple[int, int]]:
    wanted = term.key.split()
    prefix = term.kind == "prefix"
    if prefix and len(wanted) == 1:
        candidates = [i for i, w in enumerate(words) if w.folded.startswith(wanted[0])]
    else:
        candidates = starts.get(wanted[0], [])
    spans = []
    for i in candidates:
        window = words[i : i + len(wanted)]
        if (
            len(window) == len(wanted)
            and _fits(window, wanted, prefix)
            and _case_fits(window, term)
        ):
            spans.append((window[0].start, window[-1].end))
    return spans


def _fits(window: list[Token], wanted: list[str], prefix: bool) -> bool:
    *body, last = wanted
    if any(w.folded != want for w, want in zip(window, body, strict=False)):
        return False
    return window[-1].folded.startswith(last) if prefix else window[-1].folded == last


def _case_fits(window: list[Token], term: Term) -> bool:
    if not term.case_sensitive:
        return True
    written = canonical(" ".join(w.original for w in window), keep_case=True).strip()
    return (
        written.startswith(term.cased_key.strip())
        if term.kind == "prefix"
        else written == term.cased_key.strip()
    )


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def trim(text: str, highlights: list[tuple[int, int]], limit: int = SNIPPET_CHARS) -> Snippet:
    """Cut `text` to about `limit` characters around its highlights, at word boundaries."""
    text = text.strip()
    if len(text) <= limit:
        return Snippet(text, tuple(highlights))
    first = highlights[0][0] if highlights else 0
    last = highlights[-1][1] if highlights else 0
    centre = (first + min(last, first + limit)) // 2
    start = max(0, min(centre - limit // 2, len(text) - limit))
    end = min(len(text), start + limit)
    start, end = _word_boundary(text, start, end)
    prefix = ELLIPSIS if start > 0 else ""
    suffix = ELLIPSIS if end < len(text) else ""
    shift = len(prefix) - start
    kept = tuple((s + shift, e + shift) for s, e in highlights if s >= start and e <= end)
    return Snippet(prefix + text[start:end] + suffix, kept)


def _word_boundary(text: str, start: int, end: int) -> tuple[int, int]:
    """Move the cut points inwards so no word is cut in half."""
    if start > 0:
        space = text.find(" ", start, end)
        start = space + 1 if space != -1 else start
    if end < len(text):
        space = text.rfind(" ", start, end)
        end = space if space > start else end
    return start, end
