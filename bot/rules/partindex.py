"""Which rules may fire: those with a term of every part they require (set operations in C).

A rule's required parts are term sets of which an item must contain at least one each (the
terms of an `all` leaf, or of an `any` of leaves). Per part number, a table maps each term to
the rules whose part of that number holds it, so the rules left after part 1, 2, ... are
found by intersecting sets, without evaluating any rule.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from itertools import chain, repeat


class PartIndex:
    """Rules (by number) indexed by the terms of each part they require."""

    def __init__(self, required: list[list[frozenset[int]]]) -> None:
        self._part_rules, self._lacking = _index_parts(required)
        # part number -> rule -> its required part of that number (None if it has fewer), to
        # check the last few rules one by one
        self._part_of_rule = [
            tuple(parts[n] if n < len(parts) else None for parts in required)
            for n in range(len(self._part_rules))
        ]

    def rules_holding_all(self, present_ids: set[int]) -> set[int]:
        """Rules having a term of each required part among `present_ids`."""
        if not self._part_rules:
            return set()
        parts = len(self._part_rules)
        rules = set(self._rules_of_part(0, present_ids))
        for part_no in range(1, parts):
            # a union walks every rule of every present term (wildcards and common words are
            # in many rules), a check one rule at a time costs about one present term: once
            # few rules are left, checking them is cheaper
            if len(rules) * (parts - part_no) < len(present_ids):
                return self._holding_parts_from(part_no, rules, present_ids)
            lacking = rules & self._lacking[part_no] if self._lacking[part_no] else None
            # intersection() with an iterable tests each element in C, with no call per rule
            rules = rules.intersection(self._rules_of_part(part_no, present_ids))
            if lacking:
                rules |= lacking
        return rules

    def _rules_of_part(self, part_no: int, present_ids: set[int]) -> Iterator[int]:
        """Rules whose required part `part_no` holds one of `present_ids` (repeats included)."""
        by_term = self._part_rules[part_no]
        return chain.from_iterable(map(by_term.get, present_ids, repeat(())))

    def _holding_parts_from(self, part_no: int, rules: set[int], present_ids: set[int]) -> set[int]:
        """Those of `rules` having a term of each of their required parts from `part_no` on."""
        absent = present_ids.isdisjoint
        for by_rule in self._part_of_rule[part_no:]:
            # one part at a time: a rule lacking this part (None) is not ruled out by it
            rules = {rule for rule in rules if (part := by_rule[rule]) is None or not absent(part)}
        return rules


def _index_parts(
    required: list[list[frozenset[int]]],
) -> tuple[list[dict[int, tuple[int, ...]]], list[frozenset[int]]]:
    """Per part number: term -> rules whose part of that number holds it, and the rules
    with fewer parts than that (which that part number never rules out)."""
    most = max(map(len, required), default=0)
    parts: list[dict[int, set[int]]] = [defaultdict(set) for _ in range(most)]
    lacking: list[set[int]] = [set() for _ in range(most)]
    for index, rule_parts in enumerate(required):
        for part_no, part in enumerate(rule_parts):
            for term_id in part:
                parts[part_no][term_id].add(index)
        for part_no in range(len(rule_parts), most):
            lacking[part_no].add(index)
    by_term = [{t: tuple(rules) for t, rules in p.items()} for p in parts]  # untracked by gc
    return by_term, [frozenset(rules) for rules in lacking]
