"""Rules edited while the bot runs: validate the new set, swap it in whole, or keep the old one.

Three things trigger a reload: a change under the rules folder (noticed by polling the files'
sizes and modification times every few seconds, which also works on Docker bind mounts and
network filesystems where change notifications don't arrive), SIGHUP, and /reload in Telegram.
A rule set with any problem is never half-loaded: the running rules stay, every problem is
logged as FILE:LINE, and the admins are told.

Loading runs in a thread of its own, off the event loop, and is given LOAD_TIMEOUT seconds:
polling, delivery and signals (SIGTERM) carry on meanwhile, and a load that never ends (a stuck
network filesystem) is abandoned, never waited for at exit. Any failure of a reload, expected
or not, keeps the running rules and the watcher, and is reported like a problem in the files.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import stat
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from bot.errors import Problem, RuleError
from bot.rules.files import load_rules
from bot.rules.matcher import Rulebook

log = logging.getLogger(__name__)

Notify = Callable[[str], Awaitable[None]]
T = TypeVar("T")
Snapshot = tuple[tuple[str, int, int], ...]
Report = Callable[[Rulebook, Rulebook], Awaitable[str | None]]  # (old, new) -> what changed
WATCH_INTERVAL = 2.0
LOAD_TIMEOUT = 30.0  # seconds; a valid 1 MB rule file (the size limit) loads in about 2 s


@dataclass(frozen=True)
class ReloadOutcome:
    """What one reload did: the rules now running, or why the old ones stay."""

    reason: str
    ok: bool
    rule_count: int
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = ()

    def message(self) -> str:
        """A few lines for people (admins in Telegram, the log)."""
        if not self.ok:
            lines = [f"Rules NOT reloaded ({self.reason}); the previous rules keep running:"]
            return "\n".join(lines + [str(p) for p in self.problems])
        text = f"Rules reloaded ({self.reason}): {self.rule_count} rules"
        if self.added:
            text += f"; new: {', '.join(self.added)}"
        if self.removed:
            text += f"; gone: {', '.join(self.removed)}"
        return text


def snapshot(path: Path) -> Snapshot:
    """Name, size and modification time of every entry under `path` (cheap to compare).

    Not only regular files: a FIFO or a symlink loop appearing is a change too (the reload
    then reports it). Nothing is opened, so nothing here waits for a writer."""
    try:
        entries = sorted(path.rglob("*")) if path.is_dir() else [path]
    except OSError:
        return ()
    # hidden names are not read as rules (editors' lock files): their coming and going is no change
    entries = [e for e in entries if not e.name.startswith(".")]
    out = []
    for entry in entries:
        try:
            st = entry.stat()
        except OSError:  # deleted meanwhile, a broken link or a loop: listed by name alone
            out.append((str(entry), -1, -1))
            continue
        if not stat.S_ISDIR(st.st_mode):  # the stat in hand, as is_dir() would take another
            out.append((str(entry), st.st_size, st.st_mtime_ns))
    return tuple(out)


@dataclass
class Reloader:
    """Holds the running Rulebook and replaces it whole when a valid new set is found."""

    path: Path
    rulebook: Rulebook
    on_swap: list[Callable[[Rulebook], None]] = field(default_factory=list)
    notify: Notify | None = None
    report: Report | None = None  # e.g. a backtest of the edited rules, sent to admins after
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _reports: set[asyncio.Task[None]] = field(default_factory=set)

    async def reload(self, reason: str, *, notify: bool = True) -> ReloadOutcome:
        """Validate the rules on disk; swap them in when valid, else keep the running ones."""
        async with self._lock:
            old = self.rulebook
            outcome = await self._load(reason)
            (log.info if outcome.ok else log.error)("%s", outcome.message().replace("\n", "; "))
            if notify and self.notify is not None:
                try:
                    await self.notify(outcome.message())
                except Exception:  # telling the admins failed: the reload itself stands
                    log.exception("could not tell the admins about the rules reload")
        if outcome.ok and self.report is not None:
            # in the background: a backtest takes seconds, and the reload is done already
            task = asyncio.create_task(self._send_report(self.report, old, self.rulebook))
            self._reports.add(task)
            task.add_done_callback(self._reports.discard)
        return outcome

    async def _send_report(self, report: Report, old: Rulebook, new: Rulebook) -> None:
        try:
            text = await report(old, new)
        except Exception:  # a failed report must not look like a failed reload
            log.exception("could not backtest the reloaded rules")
            return
        if text:
            log.info("%s", text)
            if self.notify is not None:
                try:
                    await self.notify(text)
                except Exception:
                    log.exception("could not send the backtest of the reloaded rules")

    async def settle(self) -> None:
        """Wait for the reports of earlier reloads (at shutdown, and in tests)."""
        while self._reports:
            await asyncio.gather(*self._reports, return_exceptions=True)

    async def _load(self, reason: str) -> ReloadOutcome:
        try:
            fresh = await asyncio.wait_for(in_thread(load_rules, self.path), LOAD_TIMEOUT)
        except RuleError as exc:
            return self._kept(reason, exc.problems)
        except TimeoutError:
            why = f"loading took longer than {LOAD_TIMEOUT:g} s (a stuck disk or network share?)"
            return self._kept(reason, [Problem(str(self.path), 0, why)])
        except Exception as exc:  # a bug or an odd file must never take the watcher down
            log.exception("reloading the rules from %s failed", self.path)
            why = f"could not load the rules: {type(exc).__name__}: {exc}"
            return self._kept(reason, [Problem(str(self.path), 0, why)])
        old = {r.id for r in self.rulebook.rules}
        new = {r.id for r in fresh.rules}
        self.rulebook = fresh
        for swap in self.on_swap:
            swap(fresh)
        return ReloadOutcome(
            reason, True, len(fresh.rules), tuple(sorted(new - old)), tuple(sorted(old - new))
        )

    def _kept(self, reason: str, problems: list[Problem]) -> ReloadOutcome:
        return ReloadOutcome(reason, False, len(self.rulebook.rules), problems=tuple(problems))

    async def watch(self, stop: asyncio.Event, interval: float = WATCH_INTERVAL) -> None:
        """Reload whenever the files under the rules path change, until `stop` is set."""
        seen: Snapshot | None = None
        while not stop.is_set():
            try:
                # stat can hang on a stuck network share: off the loop, bounded
                current = await asyncio.wait_for(in_thread(snapshot, self.path), LOAD_TIMEOUT)
                if seen is not None and current != seen and not stop.is_set():
                    await self.reload("rule files changed")
                seen = current
            except Exception:  # the watcher outlives anything one look at the files does
                log.exception("watching the rules at %s failed; still watching", self.path)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)


async def in_thread(function: Callable[[Path], T], path: Path) -> T:
    """`function(path)` in a daemon thread: unlike asyncio.to_thread's pool, an abandoned call
    never holds up the exit (asyncio.run waits for its default executor's threads)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return  # timed out and abandoned meanwhile
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def work() -> None:
        try:
            result, error = function(path), None
        except BaseException as exc:  # handed to the loop, which raises it in the caller
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=work, name="rules-load", daemon=True).start()
    return await future


@contextlib.contextmanager
def reload_on_sighup(reloader: Reloader):  # type: ignore[no-untyped-def]
    """SIGHUP reloads the rules (`docker kill -s HUP`), where the platform has it."""
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[ReloadOutcome]] = set()  # keep a reference until each finishes

    def on_hup() -> None:
        task = loop.create_task(reloader.reload("SIGHUP"))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    installed = False
    with contextlib.suppress(AttributeError, NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGHUP, on_hup)
        installed = True
    try:
        yield
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGHUP)
