"""`alertbot rules backtest`: an edited rule set run over the stored items, against what matched."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.config import add_config_option, settings_from_args
from bot.durations import duration_argument, format_duration, parse_duration
from bot.errors import AlertbotError
from bot.rules.backtest import Backtest, RuleDiff, Story
from bot.rules.files import read_rule_set
from bot.rules.language import Rule
from bot.rules.matcher import Rulebook

SHOWN = 20  # stories listed per side and rule in the text report (--json lists all)


def register_actions(actions: argparse._SubParsersAction) -> None:
    """Add `rules backtest` to the `rules` command."""
    backtest = actions.add_parser(
        "backtest",
        help="run rule files over the stored items of a period; show per rule the stories "
        "that would be added or removed",
        description="Run the rule set at PATH (default: the configured rules) over the items "
        "stored in the period and compare, per rule, with what the stored matches show. Reads "
        "the database read-only: safe while the bot runs.",
    )
    backtest.add_argument(
        "path", nargs="?", type=Path, help="rules folder or file (default: the configured rules)"
    )
    backtest.add_argument(
        "--since",
        default="7d",
        type=duration_argument,
        metavar="DURATION",
        help="how far back (default 7d)",
    )
    backtest.add_argument("--json", action="store_true", help="print one JSON object")
    backtest.add_argument(
        "--jobs",
        type=int,
        default=min(os.cpu_count() or 1, 4),
        metavar="N",
        help="worker processes (default: the CPUs, at most 4; 1 spares a busy machine)",
    )
    add_config_option(backtest)
    backtest.set_defaults(handler=cmd_backtest)


def cmd_backtest(args: argparse.Namespace, clock: Callable[[], float] = time.time) -> int:
    """Exit 0 with the report; 1 with FILE:LINE problems or a database error on stderr."""
    seconds = parse_duration(args.since)  # checked by argparse already
    try:
        settings = settings_from_args(args)
        path = args.path or settings.rules_path
        rulebook = _valid_rules(path)
        if rulebook is None:
            return 1
        from bot.poll.replay import run_backtest  # imported here so `--help` stays fast

        start = clock() - seconds
        result = run_backtest(settings.database, rulebook, start, jobs=max(args.jobs, 1))
    except AlertbotError as exc:
        print(f"alertbot: {exc}", file=sys.stderr)
        return 1
    if seconds > settings.prune_after:
        print(
            f"alertbot: texts are kept for {format_duration(settings.prune_after)} only "
            "(store.prune_after); older items could not be backtested",
            file=sys.stderr,
        )
    since = datetime.fromtimestamp(start, UTC)
    if args.json:
        print(as_json(result, args.since.strip(), since.isoformat()))
    else:
        print(as_text(result, path, f"{args.since.strip()} (since {since:%Y-%m-%d %H:%M} UTC)"))
    return 0


def _valid_rules(path: Path) -> Rulebook | None:
    """The rule set compiled, or None after printing every problem as `rules check` does."""
    rules = checked_rules(path, "nothing was backtested")
    return None if rules is None else Rulebook(rules)


# here, not with `rules check` in bot.cli.rules: that module imports this one
def checked_rules(path: Path, outcome: str) -> list[Rule] | None:
    """The rules under `path`; or None after printing each problem (FILE:LINE: message) and
    their count, with `outcome`: what was not done because of them."""
    rules, problems = read_rule_set(path)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s); {outcome}", file=sys.stderr)
        return None
    return rules


def as_text(result: Backtest, path: Path, since: str) -> str:
    """The report for people: totals per rule, then the added and removed stories."""
    diffs = result.diffs()
    lines = [f"Backtest of {path} over the last {since}: {result.items} stored items"]
    for diff in diffs:
        lines.append(diff.totals())
        lines += _story_lines("+", diff.added)
        lines += _story_lines("−", diff.removed)
    for rule_id, count in result.absent_rules().items():
        lines.append(f"{rule_id}: not in {path} ({count} stories matched it)")
    changed = [d for d in diffs if d.changed]
    added = sum(len(d.added) for d in diffs)
    removed = sum(len(d.removed) for d in diffs)
    lines.append(f"{len(diffs)} rules, {len(changed)} changed: +{added} −{removed} stories in all")
    return "\n".join(lines)


def _story_lines(sign: str, stories: tuple[Story, ...]) -> list[str]:
    lines = []
    for story in stories[:SHOWN]:
        day = datetime.fromtimestamp(story.date, UTC).strftime("%Y-%m-%d %H:%M")
        lines.append(f"  {sign} {day}  {story.title or story.link or story.key}  [{story.feed}]")
        if story.snippet:
            lines.append(f"      » {story.snippet}")
    if len(stories) > SHOWN:
        lines.append(f"  {sign} … and {len(stories) - SHOWN} more (--json lists all)")
    return lines


def as_json(result: Backtest, period: str, since: str) -> str:
    """One object: {"period", "since", "items", "rules": [{rule, before, after, added, ...}]}."""
    payload = {
        "period": period,
        "since": since,
        "items": result.items,
        "rules": [_diff_json(d) for d in result.diffs()],
        "absent_rules": result.absent_rules(),
    }
    return json.dumps(payload, ensure_ascii=False, indent=2)


def _diff_json(diff: RuleDiff) -> dict[str, Any]:
    return {
        "rule": diff.rule_id,
        "before": diff.before,
        "after": diff.after,
        "added": [_story_json(s) for s in diff.added],
        "removed": [_story_json(s) for s in diff.removed],
    }


def _story_json(story: Story) -> dict[str, Any]:
    data = asdict(story)
    data["date"] = datetime.fromtimestamp(story.date, UTC).isoformat()
    data["story"] = data.pop("key")
    return data
