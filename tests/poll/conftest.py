"""Fixtures of the poll tests: the shipped rules, and a poller over a real local feed server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from feedserver import FeedServer
from pollenv import Clock, Env, polling

from bot.rules.files import load_rules
from bot.rules.matcher import Rulebook
from bot.store import Store

RULES = Path(__file__).resolve().parents[2] / "rules"


@pytest.fixture(scope="module")
def rulebook() -> Rulebook:
    return load_rules(RULES)


@pytest.fixture
def cycle_advance() -> float:
    """Seconds the clock moves before each cycle (a module overrides it to pass throttles)."""
    return 0.0


@pytest.fixture
async def env(
    store: Store, clock: Clock, feed_server: FeedServer, rulebook: Rulebook, cycle_advance: float
) -> AsyncIterator[Env]:
    async with polling(store, clock, feed_server, rulebook, advance=cycle_advance) as env:
        yield env
