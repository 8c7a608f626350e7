"""Shared pytest fixtures: a local HTTP feed server, a clock and a fresh store; the repository
root made importable."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# `.venv/bin/pytest` does not put the repository root on sys.path and the package is not
# installed, so `import bot` would fail; `pythonpath = ["."]` in pyproject.toml would do the same.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from feedserver import FeedServer, running  # noqa: E402 - tests/ is on sys.path via pytest
from pollenv import Clock  # noqa: E402

from bot.store import Store  # noqa: E402

pytest_plugins = ["fakebotapi"]  # the fake Bot API server and its `bot_api` fixture


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """A started FeedServer on 127.0.0.1 (ephemeral port), stopped after the test."""
    with running() as server:
        yield server


@pytest.fixture
def clock() -> Clock:
    """The time the store and the poller see; tests move it by hand."""
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[Store]:
    """A fresh database with every migration applied, on `clock`."""
    with Store(tmp_path / "alertbot.db", clock=clock) as s:
        yield s
