"""Commands `alertbot run` and `alertbot feeds` (health, OPML import and export)."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

from bot import status
from bot.config import Settings, add_config_option, settings_from_args
from bot.errors import AlertbotError, RuleError


def register(commands: argparse._SubParsersAction) -> None:
    """Add `run` and `feeds` to the command tree."""
    run = commands.add_parser(
        "run",
        help="poll the feeds, match the rules, send (or print) alerts",
        description="Poll every feed on its schedule, match new items against the rules and "
        "send alerts to Telegram subscribers. Without a Telegram token, or with --dry-run, "
        "alerts are printed to standard output instead. Stops cleanly on SIGINT/SIGTERM. "
        "Only one process may run on a database at a time.",
    )
    add_config_option(run)
    run.add_argument("--once", action="store_true", help="run one poll cycle, then exit")
    run.add_argument(
        "--dry-run", action="store_true", help="print alerts to stdout instead of sending them"
    )
    run.set_defaults(handler=run_command)
    _register_feeds(commands)


def _register_feeds(commands: argparse._SubParsersAction) -> None:
    feeds = commands.add_parser(
        "feeds",
        help="show each feed's health; import or export OPML",
        description="Without a subcommand: each feed's health (last success, consecutive "
        "errors and the last one, next fetch, items seen).",
    )
    add_config_option(feeds)
    feeds.set_defaults(handler=feeds_command)
    sub = feeds.add_subparsers(dest="feeds_command", metavar="SUBCOMMAND")
    imp = sub.add_parser(
        "import",
        help="print the feeds of an OPML file as YAML to paste under `feeds:`",
        description="Read an OPML file (the export format of every feed reader) and print its "
        "feeds as YAML entries to paste under `feeds:` in the configuration file. The "
        "configuration is not modified.",
    )
    imp.add_argument("opml", type=Path, metavar="OPML", help="the OPML file to read")
    imp.set_defaults(handler=import_command)
    exp = sub.add_parser(
        "export",
        help="print the configured feeds as OPML",
        description="Print the configured feeds as an OPML 2.0 document on standard output.",
    )
    add_config_option(exp)
    exp.set_defaults(handler=export_command)


def _settings(args: argparse.Namespace) -> Settings:
    return settings_from_args(args)


# -- run -------------------------------------------------------------------------------------


def run_command(args: argparse.Namespace) -> int:
    """`alertbot run`: the long-running bot, or one cycle with --once."""
    from bot import app
    from bot.logs import setup_from_settings

    try:
        settings = _settings(args)
        setup_from_settings(settings)
        return asyncio.run(app.run(settings, once=args.once, dry_run=args.dry_run))
    except RuleError as exc:
        print(f"alertbot run: the rules are invalid:\n{exc}", file=sys.stderr)
        return 1
    except AlertbotError as exc:
        print(f"alertbot run: {exc}", file=sys.stderr)
        return 1


# -- feeds -----------------------------------------------------------------------------------


def feeds_command(args: argparse.Namespace) -> int:
    """`alertbot feeds`: one block per configured feed with its health."""
    try:
        settings = _settings(args)
        lines = feed_report(settings, time.time())
    except AlertbotError as exc:
        print(f"alertbot feeds: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


def feed_report(settings: Settings, now: float) -> list[str]:
    """Each configured feed's health as plain lines."""
    if not settings.database.exists():
        unfetched = [status.FeedFacts(f.name, f.url, True, f.enabled, None) for f in settings.feeds]
        return status.feed_lines(status.StatusFacts(now, None, None, unfetched, {}, [], {}, []))
    from bot.store import Store

    with Store(settings.database) as store:
        return status.feed_lines(status.gather(store, now, settings.feeds))


# -- OPML ------------------------------------------------------------------------------------


def import_command(args: argparse.Namespace) -> int:
    """`alertbot feeds import OPML`: YAML lines to paste under `feeds:`."""
    try:
        feeds = read_opml(args.opml)
    except AlertbotError as exc:
        print(f"alertbot feeds import: {exc}", file=sys.stderr)
        return 1
    if not feeds:
        print(f"alertbot feeds import: {args.opml}: no feeds (no outline has an xmlUrl)",
              file=sys.stderr)  # fmt: skip
        return 1
    print(f"# {len(feeds)} feeds from {args.opml.name}: paste under `feeds:` in alertbot.yaml")
    print(opml_yaml(feeds), end="")
    return 0


def read_opml(path: Path) -> list[tuple[str, str]]:
    """(name, url) of every outline with an xmlUrl, names made unique slugs."""
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise AlertbotError(f"{path}: no such file") from None
    except ET.ParseError as exc:
        raise AlertbotError(f"{path}: not an OPML file: {exc}") from None
    except OSError as exc:
        raise AlertbotError(f"{path}: cannot read it: {exc}") from None
    if root.tag.lower() != "opml":
        raise AlertbotError(f"{path}: not an OPML file (the root element is <{root.tag}>)")
    feeds: list[tuple[str, str]] = []
    names: set[str] = set()
    for outline in root.iter("outline"):
        url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
        if not url:
            continue
        label = outline.get("title") or outline.get("text") or url
        name = base = _slug(label) or "feed"
        number = 2
        while name in names:
            name, number = f"{base}-{number}", number + 1
        names.add(name)
        feeds.append((name, url))
    return feeds


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40].strip("-")


def opml_yaml(feeds: list[tuple[str, str]]) -> str:
    entries = [{"name": name, "url": url} for name, url in feeds]
    text = yaml.safe_dump(entries, sort_keys=False, allow_unicode=True, width=1000)
    return "".join("  " + line + "\n" for line in text.splitlines())


def export_command(args: argparse.Namespace) -> int:
    """`alertbot feeds export`: the configured feeds as OPML 2.0 on stdout."""
    try:
        settings = _settings(args)
    except AlertbotError as exc:
        print(f"alertbot feeds export: {exc}", file=sys.stderr)
        return 1
    print(opml_document([(f.name, f.url) for f in settings.feeds]))
    return 0


def opml_document(feeds: list[tuple[str, str]]) -> str:
    opml = ET.Element("opml", version="2.0")
    head = ET.SubElement(opml, "head")
    ET.SubElement(head, "title").text = "alertbot feeds"
    body = ET.SubElement(opml, "body")
    for name, url in feeds:
        ET.SubElement(body, "outline", type="rss", text=name, title=name, xmlUrl=url)
    ET.indent(opml)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(opml, encoding="unicode")
