"""Windows: the stretches of an item (sentence, N sentences, paragraph, item, N words) a rule
is judged in.

A window is a list of (sentence, ids): the sentences it covers, each with the rule's own terms
found in it inside the window. Only the rule's own terms shape its windows, so adding another
rule never changes this rule's result.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from operator import attrgetter

from bot.models import Window
from bot.rules.language import Term, sentences_window
from bot.rules.snippets import Evidence

MAX_WINDOWS = 100  # kept in a Match; every satisfied window still counts for snippets


@dataclass
class Sentence:
    """One sentence of one field, with the terms found in it and their word positions."""

    field: str
    start: int
    end: int
    paragraph: int
    first_word: int = 0  # the field's word number of its first word (for word windows)
    hits: dict[int, list[int]] = field(default_factory=dict)  # term id -> word positions
    number: int = 0  # the sentence's number in its field (for N-sentence windows)


WindowParts = list[tuple[Sentence, frozenset[int]]]


def windows(within: str | int, sents: list[Sentence], own: frozenset[int]) -> Iterator[WindowParts]:
    """Every window a rule with these terms (`own`) could be satisfied in."""
    if within == "sentence":
        for s in sents:
            if ids := own.intersection(s.hits):
                yield [(s, ids)]  # a frozenset, as `own` is
    elif within == "item":  # one window: every sentence holding the rule's terms
        if window := [(s, ids) for s in sents if (ids := own.intersection(s.hits))]:
            yield window
    elif within == "paragraph":
        groups: dict[tuple[str, int], WindowParts] = defaultdict(list)
        for s in sents:
            if ids := own.intersection(s.hits):
                groups[(s.field, s.paragraph)].append((s, ids))
        yield from groups.values()
    else:
        count = sentences_window(within)
        for field_name in ("title", "content"):
            own_field = [s for s in sents if s.field == field_name]
            hits = _sentence_hits(own_field, own) if count else _word_hits(own_field, own)
            yield from _sweep(count or int(within), hits, own_field)


def _word_hits(sents: list[Sentence], own: frozenset[int]) -> list[tuple[int, int, int]]:
    """(word number, term id, sentence index) of every hit of the rule's terms, in order."""
    return sorted(
        (word, term_id, n)
        for n, s in enumerate(sents)
        for term_id in own.intersection(s.hits)
        for word in s.hits[term_id]
    )


def _sentence_hits(sents: list[Sentence], own: frozenset[int]) -> list[tuple[int, int, int]]:
    """(sentence number, term id, sentence index) of each of the rule's terms in each sentence,
    in order: N-sentence windows are N-word windows over sentence numbers."""
    return sorted(
        (s.number, term_id, n) for n, s in enumerate(sents) for term_id in own.intersection(s.hits)
    )


def _sweep(
    size: int, hits: list[tuple[int, int, int]], sents: list[Sentence]
) -> Iterator[WindowParts]:
    """Every distinct set of hits that `size` consecutive positions (words or sentences) hold.

    The terms inside [start, start + size) only change when a hit enters (start = hit - size
    + 1) or leaves (start = hit + 1), so those starts cover every window, in one sweep.
    """
    starts = sorted(
        {max(0, w + 1) for w, _, _ in hits} | {max(0, w - size + 1) for w, _, _ in hits}
    )
    low = high = 0
    last = (-1, -1)
    for start in starts:
        while high < len(hits) and hits[high][0] < start + size:
            high += 1
        while low < high and hits[low][0] < start:
            low += 1
        if low < high and (low, high) != last:
            last = (low, high)
            yield _group(hits[low:high], sents)


def _group(hits: list[tuple[int, int, int]], sents: list[Sentence]) -> WindowParts:
    by_sentence: dict[int, set[int]] = defaultdict(set)
    for _, term_id, n in hits:
        by_sentence[n].add(term_id)
    return [(sents[n], frozenset(ids)) for n, ids in sorted(by_sentence.items())]


def present(window: WindowParts) -> set[int]:
    """The rule's terms present anywhere in the window."""
    return set().union(*(ids for _, ids in window))


def evidence(
    satisfied: list[WindowParts], positive: frozenset[int], terms: list[Term]
) -> list[Evidence]:
    """The sentences inside satisfied windows that hold the rule's terms, one each."""
    found: dict[tuple[str, int, int], frozenset[int]] = {}
    for window in satisfied:
        for s, ids in window:
            if own := positive.intersection(ids):
                key = (s.field, s.start, s.end)
                found[key] = found[key] | own if key in found else own
    return [
        Evidence(f, start, end, tuple(sorted(map(terms.__getitem__, ids), key=_TEXT)))
        for (f, start, end), ids in found.items()
    ]


_TEXT = attrgetter("text")


def spans(satisfied: list[WindowParts]) -> tuple[Window, ...]:
    """Where the satisfied windows are (at most MAX_WINDOWS), in text order."""
    out: set[Window] = set()
    for window in satisfied:
        first, last = window[0][0], window[-1][0]
        if first.field == last.field:  # a window's sentences come field by field
            out.add(Window(first.field, first.start, last.end))
            continue
        for field_name in {s.field for s, _ in window}:
            own = [s for s, _ in window if s.field == field_name]
            out.add(Window(field_name, own[0].start, own[-1].end))
    ordered = sorted(out, key=lambda w: (w.field != "title", w.start, w.end))
    return tuple(ordered[:MAX_WINDOWS])
