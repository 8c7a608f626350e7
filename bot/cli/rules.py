"""Rule authors' commands: `rules check`, `rules test`, `match`; other `rules` ones join here."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from bot.cli.backtest import checked_rules
from bot.cli.backtest import register_actions as register_backtest
from bot.cli.evaluate import register as register_eval
from bot.cli.feedback import register_actions as register_feedback
from bot.errors import RuleError
from bot.models import Item, Match
from bot.rules.files import load_rules
from bot.rules.language import Example, Rule
from bot.rules.matcher import Rulebook
from bot.rules.text import is_text

MAX_INPUT_BYTES = 50_000_000


def default_rules_path() -> Path:
    """ALERTBOT_RULES, else ./rules."""
    return Path(os.environ.get("ALERTBOT_RULES") or "rules")


def register(commands: argparse._SubParsersAction) -> None:
    """Add `rules check|test` and `match` to the command line."""
    rules = commands.add_parser("rules", help="check or test rule files")
    sub = rules.add_subparsers(dest="rules_command", metavar="ACTION", required=True)
    check = sub.add_parser(
        "check", help="validate rule files; prints FILE:LINE: message per problem"
    )
    check.add_argument("path", nargs="?", type=Path, help="rules folder or file (default: ./rules)")
    check.set_defaults(handler=cmd_check)
    test = sub.add_parser("test", help="run every rule's embedded match/no_match examples")
    test.add_argument("path", nargs="?", type=Path, help="rules folder or file (default: ./rules)")
    test.set_defaults(handler=cmd_test)
    register_backtest(sub)
    register_feedback(sub)
    register_eval(sub, default_rules_path)

    match = commands.add_parser("match", help="show which rules fire on a text, with snippets")
    match.add_argument("file", nargs="?", default="-", help="a text file, or - for stdin (default)")
    match.add_argument("--rules", type=Path, help="rules folder or file (default: ./rules)")
    match.add_argument("--json", action="store_true", help='print {"matches": [...]} as JSON')
    match.add_argument(
        "--url", help="fetch this article page and match its main text, as full_text does"
    )
    match.set_defaults(handler=cmd_match)


def cmd_check(args: argparse.Namespace) -> int:
    """Exit 0 when every rule file is valid; else one FILE:LINE: message per problem."""
    path = args.path or default_rules_path()
    rules = checked_rules(path, "no rule was loaded")
    if rules is None:
        return 1
    print(f"{len(rules)} rule(s) OK in {path}")
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    """Run every embedded example; name the rule, the example and why it failed."""
    try:
        rulebook = load_rules(args.path or default_rules_path())
    except RuleError as exc:
        print(exc, file=sys.stderr)
        return 1
    failures, total = 0, 0
    for rule in rulebook.rules:
        for example, expected in _examples(rule):
            total += 1
            failure = _check_example(rulebook, rule, example, expected)
            if failure:
                failures += 1
                print(f"{rule.path}:{example.line}: {rule.id}: {failure}", file=sys.stderr)
    print(f"{total - failures} passed, {failures} failed")
    return 1 if failures else 0


def _examples(rule: Rule) -> list[tuple[Example, bool]]:
    return [(e, True) for e in rule.should_match] + [(e, False) for e in rule.should_not_match]


def _check_example(rulebook: Rulebook, rule: Rule, example: Example, expected: bool) -> str | None:
    item = Item(
        feed=rule.feeds[0] if rule.feeds else "",
        uid="example",
        story_key="example",
        title="",
        link="",
        published=None,
        text=example.text,
    )
    found = next((m for m in rulebook.match(item) if m.rule_id == rule.id), None)
    quoted = _shorten(example.text)
    if expected and found is None:
        return f"should match but did not: {quoted}{_found_terms(rulebook, item, rule)}"
    if not expected and found is not None:
        return f"should not match but did, on terms {', '.join(found.terms)}: {quoted}"
    return None


def _found_terms(rulebook: Rulebook, item: Item, rule: Rule) -> str:
    """Which of the rule's terms occur in the text, to show what was missing."""
    names = rulebook.explain(item, rule.id)
    return f" (terms found: {', '.join(names)})" if names else " (none of its terms found)"


def _shorten(text: str, limit: int = 100) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def cmd_match(args: argparse.Namespace) -> int:
    """Show which rules fire on one text (or article page) and their snippets."""
    if args.url and args.file != "-":
        print("alertbot: give either FILE or --url, not both", file=sys.stderr)
        return 2
    text = _read_url(args.url) if args.url else _read_input(args.file)
    if text is None:
        return 1
    try:
        rulebook = load_rules(args.rules or default_rules_path())
    except RuleError as exc:
        print(exc, file=sys.stderr)
        return 1
    item = Item(
        feed="", uid="input", story_key="input", title="", link="", published=None, text=text
    )
    matches = rulebook.match(item)
    print(_as_json(matches) if args.json else _as_text(matches))
    return 0


def _read_url(url: str) -> str | None:
    """The main text of the article at `url`, fetched and extracted as the poller does."""
    from bot.errors import FullTextError  # imported here: trafilatura is slow to import
    from bot.feeds.fetch import Fetcher
    from bot.feeds.fulltext import fetch_article

    async def fetch() -> str:
        async with Fetcher() as fetcher:
            article = await fetch_article(fetcher, url, untrusted=False)  # the operator's own URL
        assert article is not None  # no validators were sent, so no 304
        return article.text

    try:
        return asyncio.run(fetch())
    except FullTextError as exc:
        print(f"alertbot: {exc}", file=sys.stderr)
        return None


def _read_input(name: str) -> str | None:
    try:
        if name == "-":
            data = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
        else:
            with open(name, "rb") as handle:
                data = handle.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        print(f"alertbot: cannot read {name}: {exc.strerror or exc}", file=sys.stderr)
        return None
    label = "standard input" if name == "-" else name
    if len(data) > MAX_INPUT_BYTES:
        print(
            f"alertbot: {label} is over {MAX_INPUT_BYTES // 1_000_000} MB; split it",
            file=sys.stderr,
        )
        return None
    if not is_text(data):
        print(f"alertbot: {label} is not UTF-8 text (binary?)", file=sys.stderr)
        return None
    return data.decode("utf-8")


def _as_json(matches: list[Match]) -> str:
    payload = {
        "matches": [
            {
                "rule": m.rule_id,
                "title": m.title,
                "level": m.level,
                "snippets": [s.marked() for s in m.snippets],
            }
            for m in matches
        ]
    }
    return json.dumps(payload, ensure_ascii=False, indent=2)


def _as_text(matches: list[Match]) -> str:
    if not matches:
        return "no rule matched"
    lines = []
    for m in matches:
        lines.append(f"[{m.level}] {m.rule_id}: {m.title}  (terms: {', '.join(m.terms)})")
        lines += [f"  • {s.marked()}" for s in m.snippets]
    return "\n".join(lines)
