"""What poll-cycle tests share: an injected clock and a poller wired to a real feed server."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from feedserver import FeedServer

from bot.feeds.fetch import Fetcher
from bot.models import Alert, Feed
from bot.poll.articles import ArticleSource
from bot.poll.cycle import CycleStats, Poller
from bot.rules.matcher import Rulebook
from bot.store import Store

LOOPBACK = ("127.0.0.0/8", "::1")
START = 1_728_900_000.0  # 2024-10-14, the day of the fixture report


class Clock:
    """An injected clock: tests move `now` by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Env:
    """A poller on a fresh store, polling `server`; `alerts` collects what it emits."""

    store: Store
    poller: Poller
    clock: Clock
    server: FeedServer
    alerts: list[Alert]
    advance: float = 0.0  # seconds the clock moves before each cycle
    feed_defaults: dict[str, object] = field(default_factory=dict)

    async def cycle(
        self, *feeds: Feed, advance: float | None = None, force: bool = True
    ) -> CycleStats:
        self.clock.now += self.advance if advance is None else advance
        return await self.poller.run_cycle(list(feeds), force=force)

    def feed(self, name: str, path: str, **kw: object) -> Feed:
        options = {**self.feed_defaults, **kw}
        return Feed(name=name, url=self.server.url(path), **options)  # type: ignore[arg-type]


@asynccontextmanager
async def polling(
    store: Store,
    clock: Clock,
    server: FeedServer,
    rulebook: Rulebook,
    *,
    full_text: bool = False,
    allow_addresses: tuple[str, ...] = LOOPBACK,
    **env_options: Any,
) -> AsyncIterator[Env]:
    """An Env whose poller emits into `alerts`; `full_text` gives it an ArticleSource.

    Article links may reach `allow_addresses`: by default loopback, where the test servers
    are, as an operator allows an internal site (`full_text.allow_addresses`)."""
    alerts: list[Alert] = []
    async with Fetcher(timeout=1.0, allow_addresses=allow_addresses) as fetcher:
        articles = ArticleSource(store, fetcher, clock=clock, concurrency=4) if full_text else None
        poller = Poller(store, fetcher, rulebook, clock=clock, emit=alerts.append,
                        articles=articles, rng=random.Random(1))  # fmt: skip
        yield Env(store, poller, clock, server, alerts, **env_options)
