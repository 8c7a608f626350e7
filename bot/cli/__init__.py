"""Command-line front: parses arguments and hands each command to the module that owns it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from bot import __version__
from bot.cli import ops, rules, run, subscribers

Command = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree; every command has --help."""
    parser = argparse.ArgumentParser(
        prog="alertbot",
        description="Watch report feeds, match topic rules, alert Telegram subscribers.",
    )
    parser.add_argument("--version", action="version", version=f"alertbot {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in _REGISTRY:
        register(commands)
    return parser


# Each module that owns a command contributes a `register(subparsers)` function here;
# the parser stores the handler in `args.handler`.
def _registry() -> list[Callable[[argparse._SubParsersAction], None]]:
    # the order `alertbot --help` lists them in: the main job first
    return [run.register, rules.register, subscribers.register, ops.register]


_REGISTRY = _registry()


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Command | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        sys.stderr.close()
        return 0
