"""What poll-cycle tests share: an injected clock and a poller wired to a real feed server."""

from __future__ import annotations

from dataclasses import dataclass, field

from feedserver import FeedServer

from bot.models import Alert, Feed
from bot.poller import CycleStats, Poller
from bot.store import Store

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
