"""`rules eval`: the rule editor's measuring tape, on a file of labelled cases."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from bot.errors import RuleError
from bot.rules.evaluate import Report, evaluate, read_cases
from bot.rules.files import load_rules


def register(sub: argparse._SubParsersAction, default_rules: Callable[[], Path]) -> None:
    """Add `rules eval CASES.jsonl [--rules PATH] [--json]` (`default_rules`: when no --rules)."""
    cmd = sub.add_parser(
        "eval",
        help="measure rules on labelled cases: recall, quiet-rate, and why each miss",
    )
    cmd.add_argument("cases", type=Path, help="JSON Lines: id, text, expect, not (see README)")
    cmd.add_argument("--rules", type=Path, help="rules folder or file (default: ./rules)")
    cmd.add_argument("--json", action="store_true", help="print the report as one JSON object")
    cmd.set_defaults(handler=cmd_eval, default_rules=default_rules)


def cmd_eval(args: argparse.Namespace) -> int:
    """Print per-rule and overall figures, then each miss and false alarm with its reason."""
    cases, problems = read_cases(args.cases)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    try:
        rulebook = load_rules(args.rules or args.default_rules())
    except RuleError as exc:
        print(exc, file=sys.stderr)
        return 1
    report = evaluate(rulebook, cases)
    for rule_id in sorted(report.unknown_rules):
        print(f"alertbot: cases name rule '{rule_id}', which is not loaded", file=sys.stderr)
    print(as_json(report) if args.json else as_text(report, len(cases)))
    return 0


def as_json(report: Report) -> str:
    """The whole report as one JSON object."""
    payload = {
        "rules": {
            rule_id: {
                "expected": s.expected,
                "fired": s.fired,
                "recall": round(s.fired / s.expected, 4) if s.expected else None,
                "not": s.forbidden,
                "quiet": s.quiet,
                "quiet_rate": round(s.quiet / s.forbidden, 4) if s.forbidden else None,
            }
            for rule_id, s in report.rules.items()
        },
        "overall": {k: round(v, 4) for k, v in report.totals().items()},
        "misses": [_finding(f) for f in report.findings if f.kind == "miss"],
        "false_alarms": [_finding(f) for f in report.findings if f.kind != "miss"],
    }
    return json.dumps(payload, ensure_ascii=False, indent=2)


def _finding(finding: object) -> dict[str, str]:
    return {k: getattr(finding, k) for k in ("case", "rule", "why")}


def as_text(report: Report, case_count: int) -> str:
    """A table per rule, the overall line, then misses and false alarms."""
    lines = [f"{'rule':<26} expected fired recall   not quiet quiet-rate"]
    for rule_id, s in report.rules.items():
        recall = f"{s.fired / s.expected:.2f}" if s.expected else "-"
        quiet = f"{s.quiet / s.forbidden:.2f}" if s.forbidden else "-"
        lines.append(
            f"{rule_id:<26} {s.expected:>8} {s.fired:>5} {recall:>6} "
            f"{s.forbidden:>5} {s.quiet:>5} {quiet:>10}"
        )
    t = report.totals()
    lines.append(
        f"overall ({case_count} cases): recall {t['recall']:.2f} ({t['fired']}/{t['expected']})"
        f"  quiet-rate {t['quiet_rate']:.2f} ({t['quiet']}/{t['not']})"
        f"  Cyrillic recall {t['cyrillic_recall']:.2f}"
        f" ({t['cyrillic_fired']}/{t['cyrillic_expected']})"
    )
    for kind, heading in (("miss", "misses"), ("false alarm", "false alarms")):
        found = [f for f in report.findings if f.kind == kind]
        lines.append(f"{heading} ({len(found)}):" if found else f"{heading}: none")
        lines += [f"  {f.case} {f.rule}: {f.why}" for f in found]
    return "\n".join(lines)
