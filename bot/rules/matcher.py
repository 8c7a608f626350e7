"""The Rulebook: every rule compiled into one term index, matched against an item in one pass.

How an item is matched:
1. Each field (title, content) is canonicalised once and scanned once with an Aho-Corasick
   automaton holding every term of every rule (plus one RE2 set pass for all regex terms).
   This yields the set of terms present anywhere: the cost depends on the text, barely on the
   rule count.
2. Only rules that own one of those terms are looked at, and only those whose positive part
   (all/any, ignoring none) holds over the whole item go further: most items stop here.
3. For those candidates the text is split into sentences (once per item), the terms are
   credited to sentences (ASCII text: step 1's hits, less those running across sentences;
   otherwise a scan of the sentences), and each rule's expression is evaluated per window
   (sentence, paragraph, item or N words) with its `none` terms vetoing only the windows they
   occur in.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter
from typing import Any

import ahocorasick
import re2

from bot.models import Item, Match, Window
from bot.rules.credit import Credit, Scan
from bot.rules.language import Expr, Leaf, Rule, Term, compile_regex, sentences_window
from bot.rules.partindex import PartIndex
from bot.rules.snippets import make_snippets
from bot.rules.text import BOUNDARY, canonical, strip_invisible
from bot.rules.windows import Sentence, evidence, present, spans, windows

_MAX_PARTS = 64  # required parts checked per rule (more are not used for dismissal)
Node = Any  # frozenset[int] (a leaf: its term ids) or _Node


@dataclass(frozen=True)
class _Node:
    all: tuple[Node, ...]
    any: tuple[Node, ...]
    none: tuple[Node, ...]


def _holds(node: Node, present: set[int], veto: bool = True) -> bool:
    """Does the expression hold when exactly `present` terms occur (vetoes optional)?"""
    if type(node) is frozenset:
        return not node.isdisjoint(present)
    # plain loops: this runs for every candidate and window, where generators cost the most
    for child in node.all:
        if not _holds(child, present, veto):
            return False
    if node.any:
        for child in node.any:
            if _holds(child, present, veto):
                break
        else:
            return False
    if veto:
        for child in node.none:
            if _holds(child, present, veto):
                return False
    return True


@dataclass(frozen=True)
class _CompiledRule:
    rule: Rule
    expr: Node
    positive: frozenset[int]  # term ids that can make the rule fire
    own: frozenset[int]  # all its term ids, `none` ones included
    item: Node | None = None  # conditions on the whole item (`item:`), vetoes included


class Rulebook:
    """All rules compiled once; immutable, so a reload swaps a whole new Rulebook in."""

    def __init__(self, rules: Sequence[Rule]):
        self.rules: tuple[Rule, ...] = tuple(rules)
        self._by_id = {rule.id: rule for rule in self.rules}
        self._terms: list[Term] = []
        self._term_ids: dict[Term, int] = {}
        self._compiled = [self._compile_rule(rule) for rule in self.rules]
        # a rule is evaluated only when every part it requires has a term in the item
        required = [_required_parts(c.expr)[:_MAX_PARTS] for c in self._compiled]
        self._parts = PartIndex(required)
        self._unconstrained: dict[int, list[int]] = defaultdict(list)  # rules requiring no part
        for index, compiled in enumerate(self._compiled):
            for term_id in compiled.positive if not required[index] else ():
                self._unconstrained[term_id].append(index)
        self._automaton = self._build_automaton()
        self._regexes = [
            (i, compile_regex(t.key)) for i, t in enumerate(self._terms) if t.kind == "regex"
        ]
        self._regex_set = _regex_set([regex for _, regex in self._regexes])
        self._cased = {i for i, t in enumerate(self._terms) if t.case_sensitive}
        regex_ids = {term_id for term_id, _ in self._regexes}
        self._always = {i for i, c in enumerate(self._compiled) if c.positive & regex_ids}
        self._credit = Credit(
            self._terms,
            self._automaton,
            self._key_lengths,
            self._key_ids,
            self._first_of,
            self._cased,
            self._regexes,
            self._regex_set,
            self._hits_reusable,
        )

    def get(self, rule_id: str) -> Rule | None:
        """The rule with this id, if loaded."""
        return self._by_id.get(rule_id)

    @property
    def term_count(self) -> int:
        """Distinct terms across all rules."""
        return len(self._terms)

    @staticmethod
    def fields(item: Item) -> dict[str, str]:
        """The item's title and content as matched, without invisible characters: every
        Window's offsets are into these, so quotes must be cut from them, not from the item."""
        return {
            "title": strip_invisible(item.title or ""),
            "content": strip_invisible(item.text or ""),
        }

    def explain(self, item: Item, rule_id: str) -> list[str]:
        """The rule's positive terms that occur anywhere in the item (to say what is missing)."""
        compiled = next(c for c in self._compiled if c.rule.id == rule_id)
        found = set().union(*(self._scan_field(text).found for text in self.fields(item).values()))
        return sorted({self._terms[i].text for i in found & compiled.positive})

    def trace(self, item: Item, rule_id: str) -> tuple[set[str], list[tuple[Window, set[str]]]]:
        """For explaining a result: the rule's terms (as written) found anywhere in the item,
        and each window the rule is judged in, with the rule's terms found in it."""
        compiled = next(c for c in self._compiled if c.rule.id == rule_id)
        fields = self.fields(item)
        scans = {name: self._scan_field(text) for name, text in fields.items()}
        by_words = not isinstance(compiled.rule.within, str)
        relevant = [
            s
            for name in compiled.rule.fields
            for s in self._credit.analyse(fields[name], name, by_words, compiled.own, scans[name])
        ]
        texts = self._terms.__getitem__
        found = set().union(*(scans[name].found for name in compiled.rule.fields))
        traced = [
            (spans([w])[0], {texts(i).text for i in present(w)})
            for w in windows(compiled.rule.within, relevant, compiled.own)
        ]
        return {texts(i).text for i in found}, traced

    def _term_id(self, term: Term) -> int:
        if term not in self._term_ids:
            self._term_ids[term] = len(self._terms)
            self._terms.append(term)
        return self._term_ids[term]

    def _compile_rule(self, rule: Rule) -> _CompiledRule:
        positive: set[int] = set()
        own: set[int] = set()

        def compile_node(node: Expr | Leaf, collect: bool) -> Node:
            if isinstance(node, Leaf):
                ids = frozenset(self._term_id(t) for t in node.terms)
                own.update(ids)
                if collect:
                    positive.update(ids)
                return ids
            return _Node(
                tuple(compile_node(c, collect) for c in node.all),
                tuple(compile_node(c, collect) for c in node.any),
                tuple(compile_node(c, False) for c in node.none),
            )

        expr = compile_node(rule.match, True)
        own_ids = frozenset(own)  # item conditions are judged on the item, not in windows
        item = compile_node(rule.item, False) if rule.item is not None else None
        return _CompiledRule(rule, expr, frozenset(positive), own_ids, item)

    def _build_automaton(self) -> Any:
        keys: dict[str, list[int]] = defaultdict(list)
        for term_id, term in enumerate(self._terms):
            if term.kind != "regex":
                keys[term.key].append(term_id)
        automaton = ahocorasick.Automaton()
        # a key's value is its first term's id, so a scan yields term ids as they are (keys
        # that several terms share are rare); these, by that id, give its length and term ids
        self._key_lengths: list[int] = [0] * len(self._terms)
        self._key_ids: list[tuple[int, ...]] = [()] * len(self._terms)
        shared: dict[int, tuple[int, ...]] = {}
        for key, ids in keys.items():
            automaton.add_word(key, ids[0])
            self._key_lengths[ids[0]] = len(key)
            self._key_ids[ids[0]] = tuple(ids)
            if len(ids) > 1:
                shared[ids[0]] = tuple(ids[1:])
        self._shared_keys = shared  # first term id -> the other terms of its key
        self._first_of = {other: first for first, others in shared.items() for other in others}
        # a field scan's hits can be credited to sentences only if the joined sentences would
        # give the same ones: no key may hold the sentence boundary, and each case-sensitive
        # term's cased key must be as long as its key (or be non-ASCII: never fits ASCII text)
        self._hits_reusable = not any(BOUNDARY in key for key in keys) and all(
            len(t.cased_key) == len(t.key) or not t.cased_key.isascii()
            for t in self._terms
            if t.case_sensitive and t.kind != "regex"
        )
        if keys:
            automaton.make_automaton()
        return automaton if keys else None

    def match(self, item: Item) -> list[Match]:
        """Every rule that fires on `item`, in rule order, with windows, terms and snippets."""
        fields = self.fields(item)
        scans = {name: self._scan_field(text) for name, text in fields.items()}
        present = {name: scan.found for name, scan in scans.items()}
        candidates = self._candidates(item, present)
        if not candidates:
            return []
        by_words = any(not isinstance(c.rule.within, str) for c in candidates)
        wanted = frozenset().union(*(c.own for c in candidates))
        analysed = {
            name: self._credit.analyse(text, name, by_words, wanted, scans[name])
            for name, text in fields.items()
        }
        matches, words = [], {}
        for compiled in candidates:
            found = self._match_rule(compiled, analysed, fields, words)
            if found is not None:
                matches.append(found)
        return matches

    def _scan(self, canon: str) -> tuple[set[int], list[tuple[int, int]]]:
        """Terms whose key occurs in `canon`, and the automaton's (end, key) hits."""
        if self._automaton is None:
            return set(), []
        hits = list(self._automaton.iter(canon))  # kept: _analyse can reuse them
        found = set(map(itemgetter(1), hits))  # C speed; few distinct
        for first in found & self._shared_keys.keys() if self._shared_keys else ():
            found.update(self._shared_keys[first])
        return found, hits

    def _scan_field(self, text: str) -> Scan:
        if not text:
            return Scan(set(), " ", [])
        canon = canonical(text)
        found, hits = self._scan(canon)
        if found & self._cased:
            found -= self._absent_cased(found & self._cased, text)
        if self._regexes:
            found.update(self._regex_terms_in(unicodedata.normalize("NFKC", text)))
        return Scan(found, canon, hits)

    def _regex_terms_in(self, nfkc: str) -> Iterable[int]:
        """The regex terms found in the text: all in one pass when they make one RE2 set."""
        if self._regex_set is None:
            return (term_id for term_id, regex in self._regexes if regex.search(nfkc))
        return (self._regexes[n][0] for n in self._regex_set.Match(nfkc) or ())

    def _absent_cased(self, ids: set[int], text: str) -> set[int]:
        absent = set()
        if text.isascii():
            # the cased canonical text is then the text's words with single spaces between:
            # a term whose first word is nowhere in the text is absent, with no need to build it
            # ("PLAN" is a case-sensitive term; "plan" a common word)
            absent = {i for i in ids if self._terms[i].cased_key.split()[0] not in text}
            if absent == ids:
                return absent
        cased = canonical(text, keep_case=True)
        return absent | {i for i in ids - absent if self._terms[i].cased_key not in cased}

    def _candidates(self, item: Item, present: dict[str, set[int]]) -> list[_CompiledRule]:
        present_ids = set().union(*present.values())
        touched = self._parts.rules_holding_all(present_ids)
        touched.update(self._always)
        if self._unconstrained:
            touched.update(*map(self._unconstrained.get, present_ids, repeat(())))
        out = []
        by_fields: dict[tuple[str, ...], set[int]] = {}  # rules share a few field choices
        for index in sorted(touched):
            compiled = self._compiled[index]
            rule = compiled.rule
            if rule.feeds and item.feed not in rule.feeds:
                continue
            if rule.fields not in by_fields:
                by_fields[rule.fields] = set().union(*(present[f] for f in rule.fields))
            if _holds(compiled.expr, by_fields[rule.fields], veto=False) and (
                compiled.item is None or _holds(compiled.item, by_fields[rule.fields])
            ):
                out.append(compiled)
        return out

    def _match_rule(
        self,
        compiled: _CompiledRule,
        analysed: dict[str, list[Sentence]],
        texts: dict[str, str],
        words: dict,
    ) -> Match | None:
        """The rule's Match if any of its windows holds; `words` caches snippet sentences."""
        rule = compiled.rule
        relevant = [s for f in rule.fields for s in analysed[f]]
        satisfied = [
            w
            for w in windows(rule.within, relevant, compiled.own)
            if _holds(compiled.expr, present(w))
        ]
        if not satisfied:
            return None
        # of N-sentence windows, quote the sentences that hold the rule on their own, if any:
        # such a window can take in a neighbour that only shares a word or two with the topic
        whole = (
            [[part] for w in satisfied for part in w if _holds(compiled.expr, part[1])]
            if sentences_window(rule.within)
            else None
        )
        found = evidence(whole or satisfied, compiled.positive, self._terms)
        snippets = make_snippets(found, texts, words)
        if whole and not snippets:
            # what holds the rule alone is the headline (never quoted) or repeats it: quote
            # the windows, so a rule that also fired in the body shows the body's sentences
            found = evidence(satisfied, compiled.positive, self._terms)
            snippets = make_snippets(found, texts, words)
        return Match(
            rule_id=rule.id,
            title=rule.title,
            level=rule.level,
            windows=spans(satisfied),
            terms=tuple(sorted({t.text for e in found for t in e.terms})),
            snippets=snippets,
        )


def _required_parts(expr: Node) -> list[frozenset[int]]:
    """Term sets of which the item must contain at least one each, for the rule to fire."""
    if isinstance(expr, frozenset):
        return [expr]
    parts = [child for child in expr.all if isinstance(child, frozenset)]
    if expr.any and all(isinstance(child, frozenset) for child in expr.any):
        parts.append(frozenset().union(*expr.any))
    return parts


_SET_MAX_MEM = 64 << 20  # RE2 memory for all regex terms at once (a single regex gets 8 MiB)


def _regex_set(regexes: list[Any]) -> Any:
    """One RE2 set of the regexes, with their options, telling which occur in one scan (one
    search each costs a pass over the text, and a UTF-8 copy of it, per regex); None when
    there are none, or when RE2 cannot build the set within its memory."""
    if not regexes:
        return None
    options = regexes[0].options
    options.max_mem = max(options.max_mem, _SET_MAX_MEM)
    regex_set = re2.Set.SearchSet(options)
    try:
        for number, regex in enumerate(regexes):
            if regex_set.Add(regex.pattern) != number:
                return None
        regex_set.Compile()
    except re2.error:
        return None
    return regex_set
