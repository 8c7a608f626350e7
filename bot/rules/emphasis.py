"""Which matched terms deserve bold in an alert: the rare, specific ones, judged per rulebook.

A term decides a match when it is specific: a place, an operation, an actor. It is common,
and never bold, when it is
  - vocabulary: one word written in lower case in the rule ("strike", "drone*", "удар*");
  - widespread: found in the example texts, or the match terms, of many rules (at least
    half, and at least three): country names and the like ("Russia*", "Ukrain*");
  - a demonym of another term of its group ("Taiwanese" beside "Taiwan", "Chinese" beside
    "China"), or a one-word name in the group of a widespread term (Росія beside Russia*).
Highlighted text that no term explains is bold only when it is capitalised.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from bot.rules.language import Expr, Leaf, Rule, Term
from bot.rules.text import canonical

DEMONYM_ENDINGS = ("an", "ans", "ian", "ians", "ese", "ish", "i", "is")


class Emphasis:
    """A predicate over highlighted text: True when it is worth bold (see the module doc)."""

    def __init__(self, rules: Sequence[Rule]):
        leaves = {rule.id: list(_positive_leaves(rule.match)) for rule in rules}
        examples = {
            rule.id: " " + " ".join(canonical(e.text) for e in rule.should_match) + " "
            for rule in rules
        }
        spread: dict[Term, set[str]] = defaultdict(set)
        for rule_id, rule_leaves in leaves.items():
            for leaf in rule_leaves:
                for term in leaf.terms:
                    spread[term].add(rule_id)
        for term in spread:
            spread[term] |= {r for r, text in examples.items() if _in(term, text)}
        threshold = max(3, math.ceil(len(rules) / 2))
        widespread = {t for t, where in spread.items() if len(where) >= threshold}
        common = widespread | {t for t in spread if _vocabulary(t)}
        for leaf in (leaf for ls in leaves.values() for leaf in ls):
            common |= _demonyms(leaf.terms)
            if widespread.intersection(leaf.terms):  # a country's group: its other names too
                common |= {t for t in leaf.terms if " " not in _bare(t)}
        self._common = common
        self._words: dict[str, list[Term]] = defaultdict(list)
        self._prefixes: list[Term] = []
        for term in spread:
            if term.kind == "word":
                self._words[term.key].append(term)
            elif term.kind == "prefix":
                self._prefixes.append(term)

    def __call__(self, text: str) -> bool:
        key = " " + canonical(text).strip() + " "
        found = self._words.get(key, []) + [t for t in self._prefixes if key.startswith(t.key)]
        if not found:
            return text[:1].isupper()
        return not any(term in self._common for term in found)


@lru_cache(maxsize=4)
def emphasis_of(rulebook: Any) -> Emphasis:
    """The Emphasis of a Rulebook, built once per rulebook (a reload brings a new one)."""
    return Emphasis(rulebook.rules)


def _positive_leaves(node: Expr | Leaf) -> Iterable[Leaf]:
    if isinstance(node, Leaf):
        yield node
        return
    for child in (*node.all, *node.any):  # `none` terms never show up as highlights
        yield from _positive_leaves(child)


def _in(term: Term, text: str) -> bool:
    return term.kind != "regex" and term.key in text


def _bare(term: Term) -> str:
    return term.text.lstrip("=").rstrip("*").strip().strip("\"'")


def _vocabulary(term: Term) -> bool:
    """One word written wholly in lower case: a common word, not a name."""
    bare = _bare(term)
    return term.kind != "regex" and " " not in bare and bare == bare.lower()


def _demonyms(terms: Sequence[Term]) -> set[Term]:
    """Terms that are another one-word term of the group plus a demonym ending."""
    names = [_bare(t) for t in terms]
    stems = {n.lower() for n in names if " " not in n and len(n) >= 4}
    out = set()
    for term, name in zip(terms, names, strict=True):
        low = name.lower()
        for stem in stems:
            if low != stem and any(low in (stem + e, stem[:-1] + e) for e in DEMONYM_ENDINGS):
                out.add(term)
    return out
