"""Telegram's rate limits: the global limiter, one chat's limit, and waits Telegram asks for."""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import AIORateLimiter
from telegram.warnings import PTBDeprecationWarning

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[Any]]


class Stalled(Exception):
    """Telegram asked for a wait longer than the cap: the row stays pending until then."""

    def __init__(self, seconds: float):
        super().__init__(f"Telegram asked to wait {seconds:.0f}s")
        self.seconds = seconds


class _HandledRetryAfter(logging.Filter):
    """Drops only the limiter's 'after maximum of 0 retries' traceback: the Deliverer handles
    (and logs) every RetryAfter itself; the limiter's other records still get through."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Rate limit hit after maximum")


def rate_limiter(per_second: float = 30.0) -> AIORateLimiter:
    """The global limiter for ApplicationBuilder().rate_limiter(...): ~30/s, 20/min per group."""
    logger = logging.getLogger("telegram.ext.AIORateLimiter")
    if not any(isinstance(f, _HandledRetryAfter) for f in logger.filters):
        logger.addFilter(_HandledRetryAfter())
    return AIORateLimiter(overall_max_rate=per_second, max_retries=0)


class ChatLimiter:
    """At most 1 message per second to a private chat, which AIORateLimiter does not limit
    (it already holds groups and channels to 20 a minute: they are not limited twice)."""

    def __init__(self, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep):
        self.clock, self.sleep = clock, sleep
        self.recent: dict[int | str, deque[float]] = defaultdict(deque)

    @staticmethod
    def window(chat_id: int | str) -> tuple[int, float] | None:
        """(messages, seconds) allowed for a private chat; None for the others."""
        private = isinstance(chat_id, int) and chat_id > 0
        return (1, 1.0) if private else None

    async def wait(self, chat_id: int | str) -> None:
        """Return when one more message to `chat_id` keeps within its limit (and count it)."""
        window = self.window(chat_id)
        if window is None:
            return
        count, period = window
        if len(self.recent) > 10_000:  # forget chats not written to for a minute
            cutoff = self.clock() - 60
            self.recent = defaultdict(
                deque, {k: v for k, v in self.recent.items() if v and v[-1] > cutoff}
            )
        recent = self.recent[chat_id]
        while True:
            now = self.clock()
            while recent and recent[0] <= now - period:
                recent.popleft()
            if len(recent) < count:
                recent.append(now)
                return
            await self.sleep(recent[0] + period - now)


def retry_after_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that the int will become a timedelta
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
