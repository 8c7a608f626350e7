"""Backtest comparison, pure: per story and rule, what stored matches said against the edit."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from bot.models import Item
from bot.rules.backtest import Backtest, StoredMatch, edited_rules, summary_line
from bot.rules.language import Example, Expr, Leaf, Rule, parse_term
from bot.rules.matcher import Rulebook


def rule(rule_id: str, *words: str, line: int = 1) -> Rule:
    leaves = tuple(Leaf(w, (parse_term(w),)) for w in words)
    return Rule(rule_id, rule_id.title(), "", "high", Expr(all=leaves), line=line)


def item(uid: str, text: str, feed: str = "f", story: str | None = None, day: int = 1) -> Item:
    published = datetime(2026, 11, day, tzinfo=UTC)
    return Item(feed, uid, story or uid, f"T {uid}", f"https://x/{uid}", published, text)


def test_a_story_counts_once_per_rule_whatever_its_versions_and_feeds() -> None:
    backtest = Backtest(Rulebook([rule("kursk", "Kursk", "troops")]))
    did = [StoredMatch("kursk", "**Kursk** troops")]
    backtest.add(item("a1", "Kursk troops moved.", story="s", day=1), 0, did)
    backtest.add(item("a2", "Kursk troops moved again.", feed="g", story="s", day=2), 0, did)
    backtest.add(item("b", "Troops near Kursk.", day=3), 0, [])
    backtest.add(item("c", "Nothing here.", day=4), 0, [StoredMatch("kursk", "old")])
    [diff] = backtest.diffs()
    assert (diff.before, diff.after) == (2, 2) and diff.totals() == "kursk: 2 → 2 (+1 −1)"
    assert [s.key for s in diff.added] == ["b"] and [s.key for s in diff.removed] == ["c"]
    assert diff.added[0].snippet == "**Troops** near **Kursk**."
    assert diff.removed[0].snippet == "old" and backtest.items == 4


def test_only_limits_the_stored_side_and_absent_rules_are_counted() -> None:
    backtest = Backtest(Rulebook([rule("kursk", "Kursk")]), only=frozenset({"kursk"}))
    backtest.add(item("a", "Kursk."), 0, [StoredMatch("kursk", ""), StoredMatch("port", "")])
    assert backtest.absent_rules() == {}
    everything = Backtest(Rulebook([rule("kursk", "Kursk")]))
    everything.add(item("a", "Kursk."), 0, [StoredMatch("kursk", ""), StoredMatch("port", "")])
    assert everything.absent_rules() == {"port": 1}
    assert [d.short() for d in everything.diffs()] == ["kursk: unchanged"]


def test_merged_parts_equal_one_scan() -> None:
    rulebook = Rulebook([rule("kursk", "Kursk")])
    items = [item(str(n), "Kursk." if n % 2 else "No.", story=f"s{n % 3}", day=n + 1)
             for n in range(6)]  # fmt: skip
    whole, first, second = Backtest(rulebook), Backtest(rulebook), Backtest(rulebook)
    for n, it in enumerate(items):
        did = [StoredMatch("kursk", str(n))] if n % 3 == 0 else []
        whole.add(it, 0, did)
        (first if n < 3 else second).add(it, 0, did)
    first.merge_parts(second.parts())
    assert first.diffs() == whole.diffs() and first.items == whole.items


def test_only_rules_that_match_differently_count_as_edited() -> None:
    old = Rulebook([rule("a", "x"), rule("b", "y"), rule("gone", "z")])
    moved = replace(rule("a", "x", line=9), should_match=(Example("x", 3),), description="new")
    new = Rulebook([moved, rule("b", "y", "w"), rule("fresh", "q")])
    assert edited_rules(old, new) == ["b", "fresh", "gone"]
    assert edited_rules(old, old) == []


def test_the_reload_line() -> None:
    backtest = Backtest(Rulebook([rule("kursk", "Kursk"), rule("port", "port")]))
    backtest.add(item("a", "Kursk."), 0, [])
    line = summary_line(backtest.diffs(), "7 days", untouched=3)
    assert line == (
        "Backtest over the last 7 days: kursk: +1 −0; port: unchanged (3 other rules not edited)"
    )
    assert (
        summary_line([], "7 days") == "Backtest over the last 7 days: no rule matches differently."
    )
