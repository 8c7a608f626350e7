"""Fixtures of the delivery tests (tests/deliverykit.py): clock, store on it, bot."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from deliverykit import Clock, clock_store, fake_api_bot
from fakebotapi import FakeBotAPI
from telegram.ext import ExtBot

from bot.store import Store


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[Store]:
    yield from clock_store(tmp_path, clock)


@pytest.fixture
async def bot(bot_api: FakeBotAPI) -> AsyncIterator[ExtBot]:
    async for ext in fake_api_bot(bot_api):
        yield ext
