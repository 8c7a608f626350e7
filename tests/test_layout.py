"""The package's shape: no import circles, pure stages import no I/O, modules stay readable."""

from __future__ import annotations

import ast

import pytest
from importgraph import PACKAGE, find_cycle, import_graph, module_name, reachable

# The pure stages: tested without I/O, so they must not reach HTTP, SQLite or Telegram.
PURE = [
    "bot.rules",
    "bot.poll.decide",
    "bot.telegram.messages",
    "bot.telegram.digest",
    "bot.identity",
    "bot.models",
    "bot.status",
]
IO = {"httpx", "httpcore", "sqlite3", "sqlite_utils", "telegram", "trafilatura", "socket"}
IO_PACKAGES = ("bot.feeds", "bot.store", "bot.telegram.app", "bot.telegram.deliver")
# bot.rules.reload watches files and swaps rulebooks while the bot runs: the one impure rules module
NOT_PURE = {"bot.rules.reload"}


def pure_modules(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        name
        for name in graph
        if any(name == p or name.startswith(p + ".") for p in PURE) and name not in NOT_PURE
    )


def test_the_package_has_no_import_circle() -> None:
    assert find_cycle(import_graph()) is None


def test_a_circle_is_found_when_there_is_one() -> None:
    graph = {"bot.a": {"bot.b"}, "bot.b": {"bot.c", "yaml"}, "bot.c": {"bot.a"}}
    assert find_cycle(graph) == ["bot.a", "bot.b", "bot.c", "bot.a"]
    assert find_cycle({"bot.a": {"bot.b"}, "bot.b": set()}) is None


def test_lazy_imports_inside_functions_count() -> None:
    from importgraph import imported_names

    tree = ast.parse("def f():\n    from bot.store import Store\n    import httpx\n")
    assert {"bot.store", "bot.store.Store", "httpx"} <= imported_names(tree)


@pytest.mark.parametrize("module", pure_modules(import_graph()))
def test_pure_modules_reach_no_network_database_or_telegram(module: str) -> None:
    reached = reachable(import_graph(), module)
    forbidden = sorted(name for name in reached if name in IO or name.startswith(IO_PACKAGES))
    assert not forbidden, f"{module} reaches {forbidden}"


def test_the_pure_list_covers_the_stages_design_promises() -> None:
    names = pure_modules(import_graph())
    assert {"bot.rules.matcher", "bot.poll.decide", "bot.telegram.messages"} <= set(names)


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: module_name(p))
def test_every_module_says_what_it_owns_and_stays_readable(path) -> None:
    tree = ast.parse(path.read_text())
    assert ast.get_docstring(tree), f"{path.name} has no docstring"
    assert len(path.read_text().splitlines()) <= 420, f"{path} is over about 400 lines"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: module_name(p))
def test_functions_stay_short_enough_to_read_at_once(path) -> None:
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > 50  # "about 40": a docstring's worth of slack
    ]
    assert not long, f"{path.name}: {', '.join(long)}"
