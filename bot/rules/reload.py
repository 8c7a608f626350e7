"""Rules edited while the bot runs: validate the new set, swap it in whole, or keep the old one.

Three things trigger a reload: a change under the rules folder (noticed by polling the files'
sizes and modification times every few seconds, which also works on Docker bind mounts and
network filesystems where change notifications don't arrive), SIGHUP, and /reload in Telegram.
A rule set with any problem is never half-loaded: the running rules stay, every problem is
logged as FILE:LINE, and the admins are told.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from bot.errors import Problem, RuleError
from bot.rules.files import load_rules
from bot.rules.matcher import Rulebook

log = logging.getLogger(__name__)

Notify = Callable[[str], Awaitable[None]]
Report = Callable[[Rulebook, Rulebook], Awaitable[str | None]]  # (old, new) -> what changed
WATCH_INTERVAL = 2.0


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


def snapshot(path: Path) -> tuple[tuple[str, int, int], ...]:
    """Name, size and modification time of every file under `path` (cheap to compare)."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    out = []
    for file in files:
        with contextlib.suppress(OSError):  # deleted between listing and stat
            st = file.stat()
            out.append((str(file), st.st_size, st.st_mtime_ns))
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
            outcome = self._load(reason)
            (log.info if outcome.ok else log.error)("%s", outcome.message().replace("\n", "; "))
            if notify and self.notify is not None:
                await self.notify(outcome.message())
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

    def _load(self, reason: str) -> ReloadOutcome:
        try:
            fresh = load_rules(self.path)
        except RuleError as exc:
            return ReloadOutcome(
                reason, False, len(self.rulebook.rules), problems=tuple(exc.problems)
            )
        old = {r.id for r in self.rulebook.rules}
        new = {r.id for r in fresh.rules}
        self.rulebook = fresh
        for swap in self.on_swap:
            swap(fresh)
        return ReloadOutcome(
            reason, True, len(fresh.rules), tuple(sorted(new - old)), tuple(sorted(old - new))
        )

    async def watch(self, stop: asyncio.Event, interval: float = WATCH_INTERVAL) -> None:
        """Reload whenever the files under the rules path change, until `stop` is set."""
        seen = snapshot(self.path)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
            current = snapshot(self.path)
            if current != seen and not stop.is_set():
                seen = current
                await self.reload("rule files changed")


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
