"""Wires the running bot: store + run lock, rules, fetcher, the poll loop, signals, output."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from bot.config import Settings
from bot.errors import StoreUnwritable
from bot.feeds.fetch import Fetcher
from bot.feeds.parsepool import ParsePool
from bot.metrics import Metrics
from bot.models import Alert
from bot.poll.articles import ArticleSource
from bot.poll.cycle import CycleStats, Poller
from bot.poll.replay import reload_reporter
from bot.rules.files import load_rules
from bot.rules.reload import Reloader, reload_on_sighup
from bot.store import Store

log = logging.getLogger(__name__)

MIN_SLEEP = 1.0  # never spin, even when a feed is overdue
PRUNE_EVERY = 3600.0


async def run(
    settings: Settings,
    *,
    once: bool,
    dry_run: bool,
    out: TextIO | None = None,
    clock: Callable[[], float] = time.time,
) -> int:
    """Run the bot until stopped (or one cycle with `once`); returns the exit code.

    With `dry_run`, or without a Telegram token, every alert is printed to `out` (stdout) as
    it is committed. Raises AlreadyRunning when another process holds the database, and
    RuleError when the rules are invalid: the caller turns them into one line on stderr.
    """
    rulebook = load_rules(settings.rules_path)
    printing = dry_run or not settings.has_token
    # parser processes start on the first parse (none if the lock is refused), stop at exit
    with Store(settings.database, clock=clock) as store, ParsePool() as parser:
        store.acquire_run_lock()
        store.check_integrity()  # damaged pages end the run here, in one line, not mid-cycle
        async with Fetcher(
            user_agent=settings.user_agent,
            max_bytes=settings.max_bytes,
            timeout=settings.timeout,
            allow_addresses=settings.allow_addresses,
        ) as fetcher:
            articles = ArticleSource(store, fetcher, clock=clock)  # full text for teasers
            poller = Poller(store, fetcher, rulebook, clock=clock, articles=articles, parser=parser)
            poller.metrics = _metrics(settings, store)
            if printing:
                poller.emit = _printer(out or sys.stdout, lambda: poller.rulebook)
            poller.enqueue = not printing  # printed alerts are not owed to anyone later
            await _serve(poller, settings, once=once, printing=printing)
    return 0


async def _serve(poller: Poller, settings: Settings, *, once: bool, printing: bool) -> None:
    """Poll (and deliver, unless printing) until stopped, reloading edited rules meanwhile."""
    reloader = Reloader(settings.rules_path, poller.rulebook, on_swap=[poller.use_rules])
    reloader.report = reload_reporter(settings.database, poller.clock)
    stop = asyncio.Event()
    with _signals_set(stop), reload_on_sighup(reloader):
        watching = None if once else asyncio.create_task(reloader.watch(stop))
        try:
            if printing:
                await poll_loop(poller, settings, stop=stop, once=once)
            else:
                await run_with_telegram(poller, reloader, settings, stop=stop, once=once)
        finally:
            stop.set()
            if watching is not None:
                await watching
            await reloader.settle()  # a reload's backtest may still be running


async def run_with_telegram(
    poller: Poller,
    reloader: Reloader,
    settings: Settings,
    *,
    stop: asyncio.Event,
    once: bool = False,
) -> None:
    """The poll loop next to the Telegram side: update polling, delivery, admin notices.

    One process, one event loop: python-telegram-bot polls for updates in the background,
    the Deliverer works the outbox every second, and the poll loop runs as without Telegram.
    With `once`, what the cycle queued is delivered before returning.
    """
    from bot.telegram.admin import admin_notifier, watch_feeds
    from bot.telegram.app import stop_polling

    app = await _started_application(poller, reloader, settings)
    notify = admin_notifier(app.bot, settings.admin_ids)
    reloader.notify = notify
    deliverer = _deliverer(app.bot, poller, reloader, notify)
    delivering = asyncio.create_task(deliverer.run(stop, interval=1.0))
    watching = asyncio.create_task(watch_feeds(poller.store, notify, stop))
    try:
        await poll_loop(poller, settings, stop=stop, once=once)
        if once:
            await deliverer.deliver_due()
    finally:
        stop.set()
        await asyncio.gather(delivering, watching)
        await reloader.settle()  # a reload's backtest still running: let its notice go out
        await stop_polling(app)
    if deliverer.fatal is not None:  # the database turned out corrupt while sending
        raise deliverer.fatal


async def _started_application(poller: Poller, reloader: Reloader, settings: Settings) -> Any:
    """The python-telegram-bot Application, polling for updates; ConfigError when it cannot."""
    from telegram.error import InvalidToken, NetworkError

    from bot.errors import ConfigError
    from bot.telegram.app import build_application, start_polling
    from bot.telegram.handlers import BotOptions

    options = BotOptions(
        settings.admin_ids, settings.access, reloader=reloader, feeds=tuple(settings.feeds)
    )
    app = build_application(
        settings.telegram_token or "", poller.store, poller.rulebook, options,
        base_url=settings.telegram_api_url,
    )  # fmt: skip
    try:
        await start_polling(app)
    except InvalidToken:
        raise ConfigError("Telegram refused the bot token (TELEGRAM_BOT_TOKEN): check it") from None
    except NetworkError as exc:
        raise ConfigError(f"cannot reach the Telegram Bot API: {exc}") from None
    return app


def _deliverer(bot: Any, poller: Poller, reloader: Reloader, notify: Any) -> Any:
    """The Deliverer of the outbox, bolding the terms the current rules find decisive."""
    from bot.rules.emphasis import emphasis_of
    from bot.telegram.deliver import Deliverer

    deliverer = Deliverer(bot, poller.store, notify=notify)
    deliverer.decisive = emphasis_of(poller.rulebook)  # bold only decisive terms
    reloader.on_swap.append(lambda fresh: setattr(deliverer, "decisive", emphasis_of(fresh)))
    if poller.metrics is not None:
        deliverer.on_pass = poller.metrics.observe_delivery
    return deliverer


async def poll_loop(
    poller: Poller, settings: Settings, *, stop: asyncio.Event, once: bool = False
) -> None:
    """Poll on schedule until `stop` is set; a stop in mid-cycle cancels the cycle safely.

    `once` runs a single cycle over every enabled feed, due or not (what a cron job expects).

    Cancelling is safe because every item is committed with its matches and outbox rows in one
    transaction, and a feed's validators are saved only after all its items: whatever was cut
    short is fetched and found again next time.
    """
    last_prune = 0.0
    while not stop.is_set():
        started = poller.clock()
        if poller.store.write_problem:  # space may have come back
            with contextlib.suppress(StoreUnwritable):
                poller.store.probe_write()
        try:
            stats = await _until_stopped(poller.run_cycle(settings.feeds, force=once), stop)
        except StoreUnwritable:  # said once by the store; the feeds are fetched again later
            stats = CycleStats(failed=len(settings.feeds))
        if stats is None:
            log.info("stopped during a cycle; unfinished feeds will be fetched again next time")
            return
        if poller.metrics is not None:
            poller.metrics.observe_cycle(stats, poller.clock() - started)
        _log_cycle(stats)
        with contextlib.suppress(StoreUnwritable):  # health fails meanwhile: the cycle is old
            poller.store.record_cycle(started, poller.clock(), stats.summary())
            if poller.clock() - last_prune >= PRUNE_EVERY:
                pruned = poller.store.prune(settings.prune_after)
                last_prune = poller.clock()
                if pruned:
                    log.info("pruned the bodies of %d old items (their ids are kept)", pruned)
        if once:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=_sleep_for(poller, settings))


async def _until_stopped(cycle: object, stop: asyncio.Event) -> CycleStats | None:
    task = asyncio.ensure_future(cycle)  # type: ignore[arg-type]
    stopper = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if task in done:
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None


def _sleep_for(poller: Poller, settings: Settings) -> float:
    """Until the next feed is due (re-checked at least every shortest interval)."""
    now = poller.clock()
    enabled = {f.name for f in settings.feeds if f.enabled}
    times = [
        s.next_fetch
        for s in poller.store.feed_health()
        if s.name in enabled and not s.disabled and s.next_fetch is not None
    ]
    wait = min(times, default=now + settings.shortest_interval) - now
    return max(MIN_SLEEP, min(wait, settings.shortest_interval))


def _metrics(settings: Settings, store: Store) -> Metrics | None:
    """Prometheus metrics on the configured port, or None when not configured."""
    if settings.metrics_port is None:
        return None
    metrics = Metrics(store)
    metrics.serve(settings.metrics_port)
    log.info("Prometheus metrics on port %d at /metrics", settings.metrics_port)
    return metrics


IDLE_KEYS = ("feeds", "fetched", "unchanged")  # counts that alone mean nothing happened


def _log_cycle(stats: CycleStats) -> None:
    """One line per cycle: INFO when it found, failed or sent something, DEBUG when idle."""
    summary = stats.summary()
    busy = any(v for k, v in summary.items() if k not in IDLE_KEYS)
    text = ", ".join(f"{k} {v}" for k, v in summary.items() if v or k == "feeds")
    log.log(logging.INFO if busy else logging.DEBUG, "cycle done: %s", text, extra=summary)


def _printer(out: TextIO, rulebook: Callable[[], Any]) -> Callable[[Alert], None]:
    """Alerts printed as they are committed, marking the terms the current rules find decisive."""
    from bot.rules.emphasis import emphasis_of
    from bot.telegram.messages import render_plain

    # computed now, not at the first alert, so an alert is printed the moment it is committed;
    # emphasis_of keeps it per rulebook, so a reload computes it once more
    emphasis_of(rulebook())

    def emit(alert: Alert) -> None:
        out.write(render_plain(alert, decisive=emphasis_of(rulebook())) + "\n\n")
        out.flush()

    return emit


@contextlib.contextmanager
def _signals_set(stop: asyncio.Event):  # type: ignore[no-untyped-def]
    """SIGINT and SIGTERM set `stop` (the loop then finishes or cancels the cycle and exits)."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread, or no support
            pass
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
