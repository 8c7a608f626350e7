"""Backtests, pure: which stories a rule set would match against which the stored matches show.

A story counts for a rule when the rule matched any of the story's stored item versions in the
period; the comparison is per story, so a story seen in three feeds counts once. What "did"
match comes from the store's `matches` rows (what the running rules said at the time); what
"would" match comes from running the edited Rulebook over the same stored texts. Throttles and
backfill limits are left out on both sides: they decide when to alert, not what matches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import NamedTuple

from bot.models import Item, Match, Snippet
from bot.rules.language import Rule
from bot.rules.matcher import Rulebook


@dataclass(frozen=True)
class Story:
    """One story as a backtest shows it: where it came from and the sentence that fired."""

    key: str
    title: str
    feed: str
    link: str
    date: float  # publication time, else when it was first seen (UTC timestamp)
    snippet: str  # the first snippet, matched terms marked **like this**


@dataclass(frozen=True)
class RuleDiff:
    """One rule's stories before (stored matches) and after (the edited rule)."""

    rule_id: str
    before: int
    after: int
    added: tuple[Story, ...]
    removed: tuple[Story, ...]

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed)

    def totals(self) -> str:
        """`kursk: 41 → 47 (+7 −1)`, or `kursk: 41 → 41 (unchanged)`."""
        change = f"+{len(self.added)} −{len(self.removed)}" if self.changed else "unchanged"
        return f"{self.rule_id}: {self.before} → {self.after} ({change})"

    def short(self) -> str:
        """`kursk: +7 −1`, or `kursk: unchanged` (for the reload notice)."""
        if not self.changed:
            return f"{self.rule_id}: unchanged"
        return f"{self.rule_id}: +{len(self.added)} −{len(self.removed)}"


@dataclass(frozen=True)
class StoredMatch:
    """A `matches` row of a stored item: the rule that fired then and its snippets as stored."""

    rule_id: str
    snippets: str  # the row's JSON; rendered (Backtest.render) only for the stories shown


class _Seen(NamedTuple):
    date: float
    item: Item
    snippet: Snippet | str | None  # the new match's first snippet, or a stored match's JSON


Side = dict[str, dict[str, _Seen]]  # rule -> story -> its latest version that matched


@dataclass
class Backtest:
    """Feed it stored items one by one (`add`), then read the differences per rule (`diffs`)."""

    rulebook: Rulebook
    only: frozenset[str] | None = None  # compare these rules' stored matches only (None: all)
    render: Callable[[str], str] = str  # a stored match's JSON -> its first snippet, marked
    items: int = 0
    _before: Side = field(default_factory=dict)
    _after: Side = field(default_factory=dict)

    def add(self, item: Item, seen: float, did: Iterable[StoredMatch]) -> list[Match]:
        """Match one stored item with the edited rules; `did` are its stored matches."""
        self.items += 1
        date = item.published.timestamp() if item.published else seen
        for old in did:
            if self.only is None or old.rule_id in self.only:
                _note(self._before, old.rule_id, _Seen(date, item, old.snippets))
        matches = self.rulebook.match(item)
        for new in matches:
            _note(
                self._after,
                new.rule_id,
                _Seen(date, item, new.snippets[0] if new.snippets else None),
            )
        return matches

    def parts(self) -> tuple[int, Side, Side]:
        """What `merge_parts` needs, as plain data (to send from a worker process)."""
        return self.items, self._before, self._after

    def merge_parts(self, parts: tuple[int, Side, Side]) -> None:
        """Fold in another part of the same scan: what another process's `parts()` returned."""
        items, before, after = parts
        self.items += items
        for mine, theirs in ((self._before, before), (self._after, after)):
            for rule_id, stories in theirs.items():
                for seen in stories.values():
                    _note(mine, rule_id, seen)

    def diffs(self, rule_ids: Iterable[str] | None = None) -> list[RuleDiff]:
        """Per rule (the edited set's, in its order, unless `rule_ids` says otherwise)."""
        ids = list(rule_ids) if rule_ids is not None else [r.id for r in self.rulebook.rules]
        return [self._diff(rule_id) for rule_id in ids]

    def _diff(self, rule_id: str) -> RuleDiff:
        before = self._before.get(rule_id, {})
        after = self._after.get(rule_id, {})
        added = [self._story(s) for k, s in after.items() if k not in before]
        removed = [self._story(s) for k, s in before.items() if k not in after]
        return RuleDiff(rule_id, len(before), len(after), _by_date(added), _by_date(removed))

    def _story(self, seen: _Seen) -> Story:
        item, snippet = seen.item, seen.snippet
        if isinstance(snippet, Snippet):
            text = snippet.marked()
        else:
            text = self.render(snippet) if snippet else ""
        return Story(item.story_key, item.title, item.feed, item.link, seen.date, text)

    def absent_rules(self) -> dict[str, int]:
        """Rules with stored matches that the edited set does not have -> their story count."""
        present = {r.id for r in self.rulebook.rules}
        return {r: len(s) for r, s in sorted(self._before.items()) if r not in present}


def _note(side: Side, rule_id: str, seen: _Seen) -> None:
    stories = side.setdefault(rule_id, {})
    known = stories.get(seen.item.story_key)
    if known is None or seen.date >= known.date:  # the story's latest version speaks for it
        stories[seen.item.story_key] = seen


def _by_date(stories: list[Story]) -> tuple[Story, ...]:
    return tuple(sorted(stories, key=lambda s: (-s.date, s.key)))


# Rule fields that never change what a rule matches; any other field (new ones included) does
_NOT_MATCHING = frozenset(
    {
        "title",
        "description",
        "level",
        "throttle",
        "should_match",
        "should_not_match",
        "path",
        "line",
    }
)


def rule_signature(rule: Rule) -> tuple[object, ...]:
    """What decides which texts a rule matches (not its title, examples, file or line)."""
    return tuple(getattr(rule, f.name) for f in fields(rule) if f.name not in _NOT_MATCHING)


def edited_rules(old: Rulebook, new: Rulebook) -> list[str]:
    """Ids of rules that are new, gone or match differently, in the new set's order then gone."""
    before = {r.id: rule_signature(r) for r in old.rules}
    ids = [r.id for r in new.rules if before.get(r.id) != rule_signature(r)]
    present = {r.id for r in new.rules}
    return ids + sorted(set(before) - present)


def summary_line(diffs: Iterable[RuleDiff], days: str, untouched: int = 0) -> str:
    """`kursk: +7 −1 over 7 days; port-strikes: unchanged` (the reload notice's backtest)."""
    parts = [d.short() for d in diffs]
    if not parts:
        return f"Backtest over the last {days}: no rule matches differently."
    text = f"Backtest over the last {days}: " + "; ".join(parts)
    if untouched:
        text += f" ({untouched} other rule{'s' if untouched != 1 else ''} not edited)"
    return text
