"""The Rulebook: every rule compiled into one term index, matched against an item in one pass.

How an item is matched:
1. Each field (title, content) is canonicalised once and scanned once with an Aho-Corasick
   automaton holding every term of every rule (plus one RE2 pass per regex term). This yields
   the set of terms present anywhere: the cost depends on the text, barely on the rule count.
2. Only rules that own one of those terms are looked at, and only those whose positive part
   (all/any, ignoring none) holds over the whole item go further: most items stop here.
3. For those candidates the text is split into sentences (once per item), each sentence is
   scanned the same way, and each rule's expression is evaluated per window (sentence,
   paragraph, item or N words) with its `none` terms vetoing only the windows they occur in.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from typing import Any

import ahocorasick

from bot.models import Item, Match, Window
from bot.rules import Expr, Leaf, Rule, Term, compile_regex
from bot.summary import Evidence, make_snippets
from bot.text import BOUNDARY, SENTENCE_JOINER, canonical, sentences

Node = Any  # frozenset[int] (a leaf: its term ids) or _Node


@dataclass(frozen=True)
class _Node:
    all: tuple[Node, ...]
    any: tuple[Node, ...]
    none: tuple[Node, ...]


def _holds(node: Node, present: set[int], veto: bool = True) -> bool:
    """Does the expression hold when exactly `present` terms occur (vetoes optional)?"""
    if isinstance(node, frozenset):
        return not node.isdisjoint(present)
    if not all(_holds(child, present, veto) for child in node.all):
        return False
    if node.any and not any(_holds(child, present, veto) for child in node.any):
        return False
    return not (veto and any(_holds(child, present, veto) for child in node.none))


@dataclass
class _Sentence:
    """One sentence of one field, with the terms found in it and their word positions."""

    field: str
    start: int
    end: int
    paragraph: int
    hits: dict[int, list[int]] = field(default_factory=dict)  # term id -> word positions


@dataclass(frozen=True)
class _CompiledRule:
    rule: Rule
    expr: Node
    positive: frozenset[int]  # term ids that can make the rule fire


class Rulebook:
    """All rules compiled once; immutable, so a reload swaps a whole new Rulebook in."""

    def __init__(self, rules: Sequence[Rule]):
        self.rules: tuple[Rule, ...] = tuple(rules)
        self._by_id = {rule.id: rule for rule in self.rules}
        self._terms: list[Term] = []
        self._term_ids: dict[Term, int] = {}
        self._compiled = [self._compile_rule(rule) for rule in self.rules]
        # term -> (rule, required part): a rule is evaluated only when every part it requires
        # has a term in the item, which counting the distinct pairs tells without evaluating
        self._term_slots: dict[int, list[tuple[int, int]]] = defaultdict(list)
        self._parts_needed: list[int] = []
        self._unconstrained: dict[int, list[int]] = defaultdict(list)  # rules requiring no part
        for index, compiled in enumerate(self._compiled):
            required = _required_parts(compiled.expr)
            for part_no, part in enumerate(required):
                for term_id in part:
                    self._term_slots[term_id].append((index, part_no))
            self._parts_needed.append(len(required))
            for term_id in compiled.positive if not required else ():
                self._unconstrained[term_id].append(index)
        self._automaton = self._build_automaton()
        self._regexes = [
            (i, compile_regex(t.key)) for i, t in enumerate(self._terms) if t.kind == "regex"
        ]
        self._cased = {i for i, t in enumerate(self._terms) if t.case_sensitive}
        regex_ids = {term_id for term_id, _ in self._regexes}
        self._always = {i for i, c in enumerate(self._compiled) if c.positive & regex_ids}

    def get(self, rule_id: str) -> Rule | None:
        """The rule with this id, if loaded."""
        return self._by_id.get(rule_id)

    @property
    def term_count(self) -> int:
        """Distinct terms across all rules."""
        return len(self._terms)

    def explain(self, item: Item, rule_id: str) -> list[str]:
        """The rule's positive terms that occur anywhere in the item (to say what is missing)."""
        compiled = next(c for c in self._compiled if c.rule.id == rule_id)
        found = self._scan_field(item.title or "") | self._scan_field(item.text or "")
        return sorted({self._terms[i].text for i in found & compiled.positive})

    def _term_id(self, term: Term) -> int:
        if term not in self._term_ids:
            self._term_ids[term] = len(self._terms)
            self._terms.append(term)
        return self._term_ids[term]

    def _compile_rule(self, rule: Rule) -> _CompiledRule:
        positive: set[int] = set()

        def compile_node(node: Expr | Leaf, collect: bool) -> Node:
            if isinstance(node, Leaf):
                ids = frozenset(self._term_id(t) for t in node.terms)
                if collect:
                    positive.update(ids)
                return ids
            return _Node(
                tuple(compile_node(c, collect) for c in node.all),
                tuple(compile_node(c, collect) for c in node.any),
                tuple(compile_node(c, False) for c in node.none),
            )

        expr = compile_node(rule.match, True)
        return _CompiledRule(rule, expr, frozenset(positive))

    def _build_automaton(self) -> Any:
        keys: dict[str, list[int]] = defaultdict(list)
        for term_id, term in enumerate(self._terms):
            if term.kind != "regex":
                keys[term.key].append(term_id)
        automaton = ahocorasick.Automaton()
        for key, ids in keys.items():
            automaton.add_word(key, (len(key), tuple(ids)))
        if keys:
            automaton.make_automaton()
        return automaton if keys else None

    def match(self, item: Item) -> list[Match]:
        """Every rule that fires on `item`, in rule order, with windows, terms and snippets."""
        fields = {"title": item.title or "", "content": item.text or ""}
        present = {name: self._scan_field(text) for name, text in fields.items()}
        candidates = self._candidates(item, present)
        if not candidates:
            return []
        by_words = any(not isinstance(c.rule.within, str) for c in candidates)
        analysed = {name: self._analyse(text, name, by_words) for name, text in fields.items()}
        matches = []
        for compiled in candidates:
            found = self._match_rule(compiled, analysed, fields)
            if found is not None:
                matches.append(found)
        return matches

    def _scan(self, canon: str) -> set[int]:
        if self._automaton is None:
            return set()
        keys = set(map(itemgetter(1), self._automaton.iter(canon)))  # C speed; few distinct
        return set().union(*map(itemgetter(1), keys))

    def _scan_field(self, text: str) -> set[int]:
        if not text:
            return set()
        found = self._scan(canonical(text))
        if found & self._cased:
            found -= self._absent_cased(found & self._cased, text)
        nfkc = unicodedata.normalize("NFKC", text) if self._regexes else text
        found.update(term_id for term_id, regex in self._regexes if regex.search(nfkc))
        return found

    def _absent_cased(self, ids: Iterable[int], text: str) -> set[int]:
        cased = canonical(text, keep_case=True)
        return {i for i in ids if self._terms[i].cased_key not in cased}

    def _candidates(self, item: Item, present: dict[str, set[int]]) -> list[_CompiledRule]:
        present_ids = set().union(*present.values())
        slots = self._term_slots
        # distinct (rule, required part) pairs present, counted per rule, all at C speed
        parts = set(chain.from_iterable(slots[t] for t in present_ids if t in slots))
        counts = Counter(map(itemgetter(0), parts))
        need = self._parts_needed
        touched = {i for i, n in counts.items() if n == need[i]}
        touched.update(self._always)
        for term_id in present_ids:
            touched.update(self._unconstrained.get(term_id, ()))
        out = []
        for index in sorted(touched):
            compiled = self._compiled[index]
            rule = compiled.rule
            if rule.feeds and item.feed not in rule.feeds:
                continue
            anywhere = set().union(*(present[f] for f in rule.fields))
            if _holds(compiled.expr, anywhere, veto=False):
                out.append(compiled)
        return out

    def _analyse(self, text: str, field_name: str, by_words: bool) -> list[_Sentence]:
        """Sentences of one field with the terms found in each (only for candidate items)."""
        if field_name == "title":
            spans = [(0, len(text), 0)] if text.strip() else []
        else:
            spans = [(s.start, s.end, s.paragraph) for s in sentences(text)]
        out = [_Sentence(field_name, a, b, p) for a, b, p in spans]
        if out and self._automaton is not None:
            canon = canonical(SENTENCE_JOINER.join(text[a:b] for a, b, _ in spans))
            self._hits_in(out, canon, text, by_words)
        self._regex_hits(out, text)
        return out

    def _hits_in(self, out: list[_Sentence], canon: str, text: str, by_words: bool) -> None:
        """One scan of the joined sentences; each hit is credited to its sentence (and word,
        when a rule counts words: counting is the costly part)."""
        marks = [m.start() for m in re.finditer(BOUNDARY, canon)]
        for end, (length, ids) in self._automaton.iter(canon):
            start = end - length + 1
            index = bisect.bisect_left(marks, start)
            # the word's position: spaces before it, less the boundaries (not words)
            word = canon.count(" ", 0, start + 1) - 1 - index if by_words else 0
            for term_id in ids:
                out[index].hits.setdefault(term_id, []).append(word)
        for sentence in out:
            cased = self._cased.intersection(sentence.hits)
            raw = text[sentence.start : sentence.end]
            for term_id in self._absent_cased(cased, raw) if cased else ():
                del sentence.hits[term_id]

    def _regex_hits(self, out: list[_Sentence], text: str) -> None:
        if not self._regexes or not out:
            return
        text = unicodedata.normalize("NFKC", text)
        starts = [s.start for s in out]
        for term_id, regex in self._regexes:
            for m in regex.finditer(text):
                index = max(0, bisect.bisect_right(starts, m.start()) - 1)
                word = len(canonical(text[: m.start()]).split())
                out[index].hits.setdefault(term_id, []).append(word)

    def _match_rule(
        self, compiled: _CompiledRule, analysed: dict[str, list[_Sentence]], texts: dict[str, str]
    ) -> Match | None:
        rule = compiled.rule
        relevant = [s for f in rule.fields for s in analysed[f]]
        windows = [w for w in _windows(rule.within, relevant) if _holds(compiled.expr, _present(w))]
        if not windows:
            return None
        evidence = _evidence(windows, compiled.positive, self._terms)
        terms = sorted({t for e in evidence for t in e.terms}, key=lambda t: t.text)
        return Match(
            rule_id=rule.id,
            title=rule.title,
            level=rule.level,
            windows=tuple(_window_spans(windows)),
            terms=tuple(t.text for t in terms),
            snippets=make_snippets(evidence, texts),
        )


def _required_parts(expr: Node) -> list[frozenset[int]]:
    """Term sets of which the item must contain at least one each, for the rule to fire."""
    if isinstance(expr, frozenset):
        return [expr]
    parts = [child for child in expr.all if isinstance(child, frozenset)]
    if expr.any and all(isinstance(child, frozenset) for child in expr.any):
        parts.append(frozenset().union(*expr.any))
    return parts


def _present(window: list[_Sentence]) -> set[int]:
    return set().union(*(s.hits for s in window))


def _windows(within: str | int, sents: list[_Sentence]) -> list[list[_Sentence]]:
    """The windows a rule is evaluated in, each a list of sentences."""
    if within == "sentence":
        return [[s] for s in sents if s.hits]
    if within == "item":
        return [sents] if sents else []
    if within == "paragraph":
        groups: dict[tuple[str, int], list[_Sentence]] = defaultdict(list)
        for s in sents:
            groups[(s.field, s.paragraph)].append(s)
        return [g for g in groups.values() if any(s.hits for s in g)]
    return _word_windows(int(within), sents)


def _word_windows(size: int, sents: list[_Sentence]) -> list[list[_Sentence]]:
    """Windows of `size` words starting or ending at each hit, trimmed to the hits inside."""
    out = []
    for field_name in ("title", "content"):
        own = [s for s in sents if s.field == field_name]
        positions = sorted({w for s in own for ws in s.hits.values() for w in ws})
        for pos in positions:
            for low, high in ((pos, pos + size), (pos - size + 1, pos + 1)):
                out.append([_clip(s, low, high) for s in own if _overlaps(s, low, high)])
    return [w for w in out if w]


def _overlaps(sentence: _Sentence, low: int, high: int) -> bool:
    return any(low <= w < high for ws in sentence.hits.values() for w in ws)


def _clip(sentence: _Sentence, low: int, high: int) -> _Sentence:
    hits = {t: [w for w in ws if low <= w < high] for t, ws in sentence.hits.items()}
    hits = {t: ws for t, ws in hits.items() if ws}
    return _Sentence(sentence.field, sentence.start, sentence.end, sentence.paragraph, hits)


def _evidence(
    windows: list[list[_Sentence]], positive: frozenset[int], terms: list[Term]
) -> list[Evidence]:
    """The sentences inside satisfied windows that hold the rule's terms, deduplicated."""
    seen: dict[tuple[str, int], Evidence] = {}
    for window in windows:
        for s in window:
            ids = positive.intersection(s.hits)
            if ids and (s.field, s.start) not in seen:
                found = tuple(sorted((terms[i] for i in ids), key=lambda t: t.text))
                seen[(s.field, s.start)] = Evidence(s.field, s.start, s.end, found)
    return list(seen.values())


def _window_spans(windows: list[list[_Sentence]]) -> list[Window]:
    spans = set()
    for window in windows:
        for field_name in ("title", "content"):
            own = [s for s in window if s.field == field_name]
            if own:
                spans.add(Window(field_name, own[0].start, own[-1].end))
    return sorted(spans, key=lambda w: (w.field != "title", w.start, w.end))
