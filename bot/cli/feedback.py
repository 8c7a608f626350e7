"""`alertbot rules feedback`: stories readers marked "Not relevant", per rule, or as eval cases."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import groupby
from typing import TYPE_CHECKING, Any

from bot.config import add_config_option, settings_from_args
from bot.durations import duration_argument, format_duration, parse_duration
from bot.errors import AlertbotError

if TYPE_CHECKING:
    from bot.store import MarkedStory


def register_actions(actions: argparse._SubParsersAction) -> None:
    """Add `rules feedback` to the `rules` command."""
    feedback = actions.add_parser(
        "feedback",
        help='list the stories readers marked "Not relevant", per rule (--jsonl: as eval cases)',
        description='List the stories readers marked "Not relevant" under an alert, per rule, '
        "with the sentence that fired and how many readers marked it. --jsonl writes them in "
        "the `rules eval` case format (expect: [], not: [RULE]) to turn into measured cases.",
    )
    feedback.add_argument("rule", nargs="?", help="only this rule's stories")
    feedback.add_argument(
        "--since",
        default="30d",
        type=duration_argument,
        metavar="DURATION",
        help="marks this recent (default 30d)",
    )
    feedback.add_argument(
        "--jsonl", action="store_true", help="one `rules eval` case per line on stdout"
    )
    add_config_option(feedback)
    feedback.set_defaults(handler=cmd_feedback)


def cmd_feedback(args: argparse.Namespace, clock: Callable[[], float] = time.time) -> int:
    """Print the marked stories; exit 1 when the database cannot be read."""
    seconds = parse_duration(args.since)  # checked by argparse already
    try:
        database = settings_from_args(args).database
        stories = _read(database, clock() - seconds, args.rule)
    except AlertbotError as exc:
        print(f"alertbot: {exc}", file=sys.stderr)
        return 1
    if args.jsonl:
        for story in stories:
            print(json.dumps(as_case(story), ensure_ascii=False))
        return 0
    print(as_text(stories, format_duration(seconds), args.rule))
    return 0


def _read(database: Any, since: float, rule: str | None) -> list[MarkedStory]:
    from bot.errors import StoreError
    from bot.store import Store  # imported here so `--help` stays fast

    if not database.is_file():
        raise StoreError(f"no database at {database}: give --config or ALERTBOT_DATABASE")
    with Store(database) as store:
        return store.marked_stories(since, rule)


def as_text(stories: list[MarkedStory], since: str, rule: str | None) -> str:
    """Per rule: each marked story with its readers, feed, date and the sentence that fired."""
    if not stories:
        scope = f" for {rule}" if rule else ""
        return f"No story was marked not relevant{scope} in the last {since}."
    lines: list[str] = []
    for rule_id, group in groupby(stories, key=lambda s: s.rule_id):
        marked = list(group)
        lines.append(f"{rule_id}: {len(marked)} stor{'ies' if len(marked) != 1 else 'y'} marked")
        for story in marked:
            readers = f"{story.readers} reader{'s' if story.readers != 1 else ''}"
            lines.append(f"  {readers}  {story.title or story.link}  [{story.feed}, {_day(story)}]")
            if story.snippet:
                lines.append(f"      » {story.snippet}")
    return "\n".join(lines)


def _day(story: MarkedStory) -> str:
    when = story.published if story.published is not None else story.last_marked
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d")


def as_case(story: MarkedStory) -> dict[str, Any]:
    """A `rules eval` case: the story's text, which must stay quiet for the rule."""
    text = "\n\n".join(p for p in (story.title, story.text) if p)
    if story.snippet and story.snippet.rstrip("…") not in text:
        text += "\n\n" + story.snippet  # a teaser's alert fired on the article's sentence
    digest = hashlib.sha256(story.story_key.encode()).hexdigest()[:10]
    return {
        "id": f"feedback-{story.rule_id}-{digest}",
        "source": story.feed,
        "text": text,
        "expect": [],
        "not": [story.rule_id],
        "lang": guess_lang(text),
        "note": (
            f"marked not relevant by {story.readers} reader(s); fired on: {story.snippet} "
            f"({story.link or story.story_key})"
        ),
    }


def guess_lang(text: str) -> str:
    """en, ru or uk from the letters used (Ukrainian has і ї є ґ, Russian ы э ъ ё)."""
    letters = [c for c in text.lower() if c.isalpha()]
    cyrillic = [c for c in letters if "\u0400" <= c <= "\u04ff"]
    if len(cyrillic) * 2 < len(letters) or not letters:
        return "en"
    uk = sum(c in "іїєґ" for c in cyrillic)
    ru = sum(c in "ыэъё" for c in cyrillic)
    return "uk" if uk > ru else "ru"
