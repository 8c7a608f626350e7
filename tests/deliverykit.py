"""What delivery tests share: an injected clock, a store on it, and a bot on the fake Bot API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

from fakebotapi import FakeBotAPI
from telegram import LinkPreviewOptions
from telegram.ext import Defaults, ExtBot
from telegram.request import HTTPXRequest

from bot.store import Store
from bot.telegram.deliver import rate_limiter

TOKEN = "123456:SECRET-token-never-logged"
ADMIN = 99
START = datetime(2024, 10, 14, 5, 0, tzinfo=UTC).timestamp()


class Clock:
    """An injected clock: sleeping advances it at once (and counts what was slept)."""

    def __init__(self, now: float = START):
        self.now = now
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0)
        self.slept += max(seconds, 0)
        await asyncio.sleep(0)


def clock_store(tmp_path: Path, clock: Clock) -> Iterator[Store]:
    with Store(tmp_path / "alertbot.db", clock=clock) as store:
        yield store


async def fake_api_bot(bot_api: FakeBotAPI) -> AsyncIterator[ExtBot]:
    """A bot as the app builds it (no link previews), on the fake Bot API over real HTTP."""
    request = HTTPXRequest(connection_pool_size=64, read_timeout=1.0)
    defaults = Defaults(link_preview_options=LinkPreviewOptions(is_disabled=True))
    ext = ExtBot(
        TOKEN, base_url=bot_api.base_url, request=request, rate_limiter=rate_limiter(),
        defaults=defaults,
    )  # fmt: skip
    async with ext:
        yield ext
