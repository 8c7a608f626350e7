"""Running alertbot as people do: a config file, a feed body, `alertbot` in a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from feedserver import rss as feed_document

from bot.store import Store

ROOT = Path(__file__).resolve().parent.parent
KURSK = "Russian sources claim that Russian forces have regained positions in the Kursk region."
PORT = "Russian drones struck port infrastructure in Odesa overnight, damaging a grain terminal."


def rss(*texts: str, start: int = 1) -> bytes:
    """Reports numbered from `start`, one per text."""
    return feed_document(*(
        {"title": f"Report {n}", "link": f"https://example.org/r/{n}", "guid": f"urn:r:{n}",
         "pubDate": f"Mon, 14 Oct 2024 12:{n:02d}:00 GMT", "description": text}
        for n, text in enumerate(texts, start=start)
    ))  # fmt: skip


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ALERTBOT_", "TELEGRAM_"))}  # fmt: skip
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def write_config(path: Path, feeds: dict[str, str], *, interval: str = "1h") -> Path:
    lines = ["feeds:"]
    for name, url in feeds.items():
        lines += [f"  - name: {name}", f"    url: {url}", "    backfill: 20"]
    lines += [
        "defaults:",
        f"  interval: {interval}",
        "  timeout: 3s",
        "paths:",
        f"  rules: {ROOT / 'rules'}",
        "  database: state/test.db",
    ]
    config = path / "alertbot.yaml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def alertbot(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def start(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def start_running(
    config: Path, cwd: Path, procs: list[subprocess.Popen[str]]
) -> tuple[subprocess.Popen[str], Path]:
    """`alertbot run` with a config from write_config, added to `procs` (the test's clean-up);
    returns it and its database once the run is registered there (it holds the run lock)."""
    process = start("run", "--config", str(config), cwd=cwd)
    procs.append(process)
    database = cwd / "state" / "test.db"
    wait_for(lambda: db_rows(database, "SELECT count(*) FROM runs") == [(1,)], process)
    return process, database


def wait_for(condition, proc: subprocess.Popen[str], timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    """Poll a condition of another process (no fixed sleeps: returns as soon as it holds)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            out, err = proc.communicate(timeout=10)
            raise AssertionError(f"condition not met; process said:\n{out}\n{err}")
        time.sleep(0.05)


def wait_until(condition: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    """Poll until `condition` holds (no fixed sleeps), failing with what was awaited."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@contextmanager
def bot_running(config: Path, cwd: Path, **env: str) -> Iterator[subprocess.Popen[str]]:
    """`alertbot run --config CONFIG` with these environment variables, killed at the end if
    the test left it running."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--config", str(config)],
        cwd=cwd, env=clean_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def rules_dir(tmp_path: Path, **files: str) -> Path:
    """tmp_path/rules holding NAME.yaml for each NAME=text (dedented)."""
    folder = tmp_path / "rules"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


def db_rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    if not path.exists():
        return []
    with Store(path) as store:
        return store.db.execute(sql).fetchall()


def one_feed_config(tmp_path: Path, feed_url: str, rules: Path, more: str = "") -> Path:
    """alertbot.yaml with one feed `wire`, these rules, a database under state/, and `more`."""
    config = tmp_path / "alertbot.yaml"
    config.write_text(
        f"feeds:\n  - name: wire\n    url: {feed_url}\n    backfill: 10\n"
        f"paths:\n  rules: {rules}\n  database: state/bot.db\n{more}"
    )
    return config


class Running:
    """`alertbot run` in a subprocess, its output collected line by line as it comes."""

    def __init__(self, config: Path, cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--config", str(config)],
            cwd=cwd, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert self.proc.poll() is None, "".join(self.lines)
            assert time.monotonic() < deadline, f"never saw {text!r}:\n" + "".join(self.lines)
            time.sleep(0.05)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=15)
