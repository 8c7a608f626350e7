"""Feed parsing off the event loop: worker processes on multi-core machines, else a thread.

    with ParsePool() as parser:                   # once per run (app.run, bench/poll.py)
        parsed, prints = await parser.parse(body, headers, feed.name, url)

feedparser and html_to_text are pure Python and hold the GIL, so a thread only keeps the event
loop responsive; a second core helps only when parsing runs in another process. Workers are
started with `spawn` (never `fork`: the parent holds threads and an open SQLite connection),
ignore SIGINT (Ctrl-C reaches the whole process group; the parent stops cleanly by itself),
exit when the parent is gone (even SIGKILLed), and compute each item's text fingerprint too,
the other per-item CPU cost of a new feed. With one CPU, `workers` 0 or 1, or where processes
cannot be started, parsing runs in a thread.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from bot.errors import FeedError
from bot.feeds.parse import ParsedFeed, parse_feed
from bot.identity import text_fingerprint

log = logging.getLogger(__name__)


def parse_job(
    body: bytes, headers: dict[str, str], feed_name: str, url: str
) -> tuple[ParsedFeed, list[str]]:
    """parse_feed plus each item's text_fingerprint (what the poller needs from the bytes)."""
    parsed = parse_feed(body, headers, feed_name, url)
    return parsed, [text_fingerprint(item.title, item.text) for item in parsed.items]


def cpu_count() -> int:
    """CPUs this process may run on (the affinity mask, as in a container), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _worker_init(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: int) -> None:
    """A parent killed with SIGKILL cannot stop its workers: they notice and leave on their own."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


class ParsePool:
    """Runs `parse_job` in worker processes (or a thread); close() or use as a context manager.

    `workers=None` means one per CPU; 0 or 1 CPU means a thread (no process is started).
    """

    def __init__(self, workers: int | None = None) -> None:
        self.workers = cpu_count() if workers is None else workers
        self._pool: Executor | None = self._start() if self.workers > 1 else None

    @property
    def processes(self) -> bool:
        """True when parsing runs in worker processes."""
        return self._pool is not None

    def pids(self) -> list[int]:
        """The worker processes' ids (for measuring their memory)."""
        found = getattr(self._pool, "_processes", None) or {}
        return sorted(found)

    def _start(self) -> Executor | None:
        try:
            return ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_init,
                initargs=(os.getpid(),),
            )
        except (OSError, ImportError, NotImplementedError) as exc:  # no sem_open, no /dev/shm
            log.warning("cannot start parser processes (%s); parsing in a thread", exc)
            return None

    async def parse(
        self, body: bytes, headers: dict[str, str], feed_name: str, url: str
    ) -> tuple[ParsedFeed, list[str]]:
        """The parsed feed and its items' fingerprints; raises FeedError if a worker died."""
        if self._pool is None:
            return await asyncio.to_thread(parse_job, body, headers, feed_name, url)
        pool = self._pool
        try:
            return await asyncio.get_running_loop().run_in_executor(
                pool, parse_job, body, headers, feed_name, url
            )
        except BrokenProcessPool:
            # a worker died (killed, out of memory) with this feed or another in hand: start
            # afresh for the next feed; this one is retried next cycle like any failure
            if self._pool is pool:
                _stop(pool, grace=0.0)
                self._pool = self._start()
            raise FeedError(
                f"{url}: the parser process died while reading this feed; it will be retried"
            ) from None

    def close(self) -> None:
        if self._pool is not None:
            _stop(self._pool, grace=5.0)
            self._pool = None

    def __enter__(self) -> ParsePool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _stop(pool: Executor, grace: float) -> None:
    """Shut the pool down and make sure its workers are gone within `grace` seconds.

    A worker killed while it held the result queue's lock leaves its siblings blocked on that
    lock for ever, and the executor's own shutdown then waits for them for ever (at interpreter
    exit too): whatever has not left in time is killed."""
    workers = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + grace
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
        if worker.is_alive():
            worker.kill()
            worker.join(5.0)
