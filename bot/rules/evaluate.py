"""Measuring rules on labelled cases: recall, quiet-rate, and why each miss or false alarm.

A case is one JSON object per line (JSON Lines)::

    {"id": "tw-1", "text": "...", "title": "", "expect": ["taiwan-exercises"],
     "not": ["port-strikes"], "lang": "en"}

``expect`` lists rules that should fire on the text, ``not`` rules that must stay quiet; a rule
in neither is not judged on that case. ``title`` (the headline) and ``lang`` are optional; a
case whose ``lang`` is ``ru`` or ``uk`` counts toward the Cyrillic recall. Other keys (source,
note) are ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from bot.errors import Problem
from bot.models import Item, Match, Window
from bot.rules.language import Expr, Leaf, Rule, sentences_window
from bot.rules.matcher import Rulebook

CYRILLIC_LANGS = ("ru", "uk")


@dataclass(frozen=True)
class Case:
    """One labelled passage."""

    id: str
    text: str
    expect: tuple[str, ...] = ()
    not_: tuple[str, ...] = ()
    lang: str = ""
    title: str = ""


@dataclass
class RuleScore:
    """How one rule did: cases that expected it and fired, and cases that forbade it."""

    expected: int = 0
    fired: int = 0
    forbidden: int = 0
    quiet: int = 0


@dataclass(frozen=True)
class Finding:
    """A miss (an expected rule stayed quiet) or a false alarm (a forbidden rule fired)."""

    case: str
    rule: str
    kind: str  # "miss" or "false alarm"
    why: str


@dataclass
class Report:
    """Scores per rule, overall figures and every finding."""

    rules: dict[str, RuleScore] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    cyrillic_expected: int = 0
    cyrillic_fired: int = 0
    unknown_rules: set[str] = field(default_factory=set)

    def totals(self) -> dict[str, float | int]:
        """Overall counts and rates (a rate with nothing to measure is 1.0)."""
        expected = sum(s.expected for s in self.rules.values())
        fired = sum(s.fired for s in self.rules.values())
        forbidden = sum(s.forbidden for s in self.rules.values())
        quiet = sum(s.quiet for s in self.rules.values())
        return {
            "expected": expected,
            "fired": fired,
            "recall": _rate(fired, expected),
            "not": forbidden,
            "quiet": quiet,
            "quiet_rate": _rate(quiet, forbidden),
            "cyrillic_expected": self.cyrillic_expected,
            "cyrillic_fired": self.cyrillic_fired,
            "cyrillic_recall": _rate(self.cyrillic_fired, self.cyrillic_expected),
        }


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 1.0


def read_cases(path: Path) -> tuple[list[Case], list[Problem]]:
    """The cases in a JSON Lines file, and a FILE:LINE problem for each unreadable line."""
    cases, problems = [], []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        return [], [Problem(str(path), 1, f"cannot read the cases: {exc}")]
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            cases.append(_case(json.loads(line)))
        except (ValueError, TypeError) as exc:
            problems.append(Problem(str(path), number, str(exc)))
    return cases, problems


def _case(data: object) -> Case:
    if not isinstance(data, dict):
        raise ValueError("a case must be a JSON object with id, text, expect and not")
    for key in ("id", "text"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise ValueError(f"a case needs '{key}' (text)")
    lists = {key: data.get(key, []) for key in ("expect", "not")}
    for key, value in lists.items():
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"'{key}' must be a list of rule ids")
    return Case(
        data["id"],
        data["text"],
        tuple(lists["expect"]),
        tuple(lists["not"]),
        str(data.get("lang", "")),
        str(data.get("title", "")),
    )


def evaluate(rulebook: Rulebook, cases: list[Case]) -> Report:
    """Match every case and score each rule it is labelled for."""
    report = Report({rule.id: RuleScore() for rule in rulebook.rules})
    for case in cases:
        item = Item("", case.id, case.id, case.title, "", None, case.text)
        matches = {m.rule_id: m for m in rulebook.match(item)}
        for rule_id in case.expect + case.not_:
            if rulebook.get(rule_id) is None:
                report.unknown_rules.add(rule_id)
        for rule_id in (r for r in case.expect if r in report.rules):
            _score_expected(report, rulebook, case, item, rule_id, rule_id in matches)
        for rule_id in (r for r in case.not_ if r in report.rules):
            score = report.rules[rule_id]
            score.forbidden += 1
            if rule_id in matches:
                why = _why_fired(rulebook.fields(item), matches[rule_id])
                report.findings.append(Finding(case.id, rule_id, "false alarm", why))
            else:
                score.quiet += 1
    return report


def _score_expected(
    report: Report, rulebook: Rulebook, case: Case, item: Item, rule_id: str, fired: bool
) -> None:
    score = report.rules[rule_id]
    score.expected += 1
    cyrillic = case.lang in CYRILLIC_LANGS
    report.cyrillic_expected += cyrillic
    if fired:
        score.fired += 1
        report.cyrillic_fired += cyrillic
        return
    rule = rulebook.get(rule_id)
    assert rule is not None
    found, traced = rulebook.trace(item, rule_id)
    fields = rulebook.fields(item)
    why = explain_miss(rule, found, [(_quote(fields, w), present) for w, present in traced])
    report.findings.append(Finding(case.id, rule_id, "miss", why))


def _quote(fields: dict[str, str], window: Window) -> str:
    return _shorten(fields[window.field][window.start : window.end])


def _shorten(text: str, limit: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _why_fired(fields: dict[str, str], match: Match) -> str:
    return f'fired on terms {", ".join(match.terms)} in "{_quote(fields, match.windows[0])}"'


def explain_miss(rule: Rule, found: set[str], windows: list[tuple[str, set[str]]]) -> str:
    """Why the rule did not fire: an item-wide condition, or the closest window it had."""
    if rule.item is not None:
        lacked, vetoes = _closest(rule.item, found)
        if lacked:
            return f"the item lacks {_and(lacked)} (item condition)"
        if vetoes:
            return f"the whole item is vetoed by {_and(vetoes)}"
    if not windows:
        return "none of its terms occur"
    best = max(windows, key=lambda w: _satisfied(rule.match, w[1]))
    quote, present = best
    had = _had(rule.match, present)
    lacked, vetoes = _closest(rule.match, present)
    scope = _scope(rule.within)
    if not lacked and vetoes:
        return f'{scope} "{quote}" had what it needs but {_and(vetoes)} vetoed it'
    had_part = f"had {_and(had)}" if had else "had none of its parts"
    return f'{had_part} {scope} but no {_or(lacked)}; closest: "{quote}"'


def _scope(within: str | int) -> str:
    if count := sentences_window(within):
        return f"in {count} sentences"
    if isinstance(within, int):
        return f"within {within} words"
    return "in the item" if within == "item" else f"in one {within}"


def _holds(node: Expr | Leaf, present: set[str]) -> bool:
    if isinstance(node, Leaf):
        return any(t.text in present for t in node.terms)
    return (
        all(_holds(c, present) for c in node.all)
        and (not node.any or any(_holds(c, present) for c in node.any))
        and not any(_holds(c, present) for c in node.none)
    )


def _name(node: Expr | Leaf) -> str:
    if isinstance(node, Leaf):
        return node.name
    if not node.all and len(node.any) == 1:  # {any: [x], none: [...]}: x, with its vetoes
        return _name(node.any[0])
    parts = [_name(c) for c in node.all] + ([f"one of ({_or_names(node.any)})"] if node.any else [])
    return parts[0] if len(parts) == 1 else "(" + " and ".join(parts) + ")"


def _or_names(nodes: tuple[Expr | Leaf, ...]) -> str:
    return ", ".join(_name(n) for n in nodes)


def _satisfied(node: Expr | Leaf, present: set[str]) -> float:
    """How much of the positive part holds (0..1), vetoes aside."""
    if isinstance(node, Leaf):
        return 1.0 if _holds(node, present) else 0.0
    scores = [_satisfied(c, present) for c in node.all]
    if node.any:
        scores.append(max(_satisfied(c, present) for c in node.any))
    return sum(scores) / len(scores) if scores else 1.0


def _had(node: Expr | Leaf, present: set[str]) -> list[str]:
    """The parts (leaves) present, along the closest alternative."""
    if isinstance(node, Leaf):
        return [node.name] if _holds(node, present) else []
    had = [name for c in node.all for name in _had(c, present)]
    if node.any:
        had += _had(max(node.any, key=lambda c: _satisfied(c, present)), present)
    return had


def _closest(node: Expr | Leaf, present: set[str]) -> tuple[list[str], list[str]]:
    """What is missing along the closest alternative, and which vetoes are present."""
    if isinstance(node, Leaf):
        return ([] if _holds(node, present) else [node.name]), []
    lacked: list[str] = []
    vetoes = [_name(c) for c in node.none if _holds(c, present)]
    for child in node.all:
        more, more_vetoes = _closest(child, present)
        lacked += more
        vetoes += more_vetoes
    if node.any and not any(_holds(c, present) for c in node.any):
        best = max(node.any, key=lambda c: _satisfied(c, present))
        more, more_vetoes = _closest(best, present)
        one_of = _name(node.any[0]) if len(node.any) == 1 else f"one of ({_or_names(node.any)})"
        lacked += more if _satisfied(best, present) else [one_of]
        vetoes += more_vetoes
    return lacked, vetoes


def _and(names: list[str]) -> str:
    names = list(dict.fromkeys(names))
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _or(names: list[str]) -> str:
    names = list(dict.fromkeys(names))
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
