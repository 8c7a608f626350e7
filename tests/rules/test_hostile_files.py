"""Rule files that would hang or kill the bot: real FIFOs, devices, symlink loops, bombs.

Every case is answered by `alertbot rules check` with exit 1 and one `FILE:` or `FILE:LINE:`
line per problem, and by a reload with the old rules kept, the admins told and the watcher alive.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from feedserver import FeedServer
from runbot import Running, one_feed_config, rss

from bot.rules import reload as reload_module
from bot.rules.files import load_rules
from bot.rules.reload import Reloader

ROOT = Path(__file__).resolve().parents[2]
RULE = "id: famine\ntitle: Famine\nmatch:\n  all: [famine]\n"
GOOD_RULE = "id: drought\ntitle: Drought\nmatch:\n  all: [drought]\n"


def alias_bomb() -> str:
    """Billion laughs: nine levels of nine aliases, 9**9 values once expanded."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]" for n in range(1, 9)]
    return "\n".join(lines) + '\nid: bomb\nmatch:\n  all: ["*l8"]\nterms: {x: *l8}\n'


def deep(levels: int = 10_000) -> str:
    return "id: deep\nmatch:\n  all: " + "[" * levels + "x" + "]" * levels + "\n"


def make_fifo(path: Path) -> None:
    os.mkfifo(path)


def symlink_to(target: str) -> Callable[[Path], None]:
    return lambda path: os.symlink(target, path)


def write(text: str) -> Callable[[Path], None]:
    return lambda path: path.write_text(text, encoding="utf-8")


def big_valid_rule(megabytes: float) -> str:
    terms = "".join(f"    - term{n:07d}\n" for n in range(int(megabytes * 1e6 / 18)))
    return f"id: big\nmatch:\n  all: ['@big']\nterms:\n  big:\n{terms}"


FIFO = "is a named pipe (FIFO), not a regular file"
DEVICE = "is a character device, not a regular file"
# (file to create under rules/, how, what the one problem line says after "FILE")
CASES = {
    "fifo term list": ("terms/x.txt", make_fifo, f": term list x.txt {FIFO}"),
    "fifo rule file": ("x.yaml", make_fifo, f": the file {FIFO}"),
    "fifo terms yaml": ("terms/x.yaml", make_fifo, f": the file {FIFO}"),
    "term list is /dev/zero": (
        "terms/x.txt",
        symlink_to("/dev/zero"),
        f": term list x.txt {DEVICE}",
    ),
    "rule file is /dev/zero": ("x.yaml", symlink_to("/dev/zero"), f": the file {DEVICE}"),
    "rule file symlink loop": (
        "x.yaml",
        symlink_to("x.yaml"),
        ": cannot read the file: a symlink loop",
    ),
    "term list symlink loop": (
        "terms/x.txt",
        symlink_to("x.txt"),
        ": cannot read term list x.txt: a symlink loop",
    ),
    "rule file is a folder": ("x.yaml", os.mkdir, ": the file is a folder, not a regular file"),
    "alias bomb": ("x.yaml", write(alias_bomb()), ": expands to more than 200,000 values"),
    "deep nesting": ("x.yaml", write(deep()), ":3: nested more than 100 levels deep"),
    "ten megabytes": (
        "x.yaml",
        write(big_valid_rule(10)),
        ": the file is 10.0 MB, over the 1 MB limit",
    ),
    "group file is /dev/zero": (
        "x.yaml",
        write(RULE + "terms:\n  z: /dev/zero\n"),
        f":6: term list zero {DEVICE}",
    ),
}


def hostile_rules(tmp_path: Path, name: str) -> tuple[Path, Path, str]:
    folder = tmp_path / "rules"
    (folder / "terms").mkdir(parents=True)
    (folder / "famine.yaml").write_text(RULE, encoding="utf-8")
    relative, make, said = CASES[name]
    make(folder / relative)
    return folder, folder / relative, said


@pytest.mark.parametrize("name", CASES)
def test_rules_check_answers_each_hostile_file_with_one_line(tmp_path: Path, name: str) -> None:
    folder, path, said = hostile_rules(tmp_path, name)
    result = subprocess.run(
        [sys.executable, "-m", "bot", "rules", "check", str(folder)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,  # a hang fails the test
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    *problems, summary = result.stderr.splitlines()
    assert summary == "1 problem(s); no rule was loaded"
    if name == "group file is /dev/zero":
        path = folder / "x.yaml"
    assert problems == [p for p in problems if p.startswith(f"{path}{said}")], problems
    assert len(problems) == 1


def test_a_large_but_allowed_rule_file_loads(tmp_path: Path) -> None:
    (tmp_path / "big.yaml").write_text(big_valid_rule(0.9), encoding="utf-8")
    assert [r.id for r in load_rules(tmp_path).rules] == ["big"]


def test_editor_lock_files_are_not_rules(tmp_path: Path) -> None:
    (tmp_path / "famine.yaml").write_text(RULE, encoding="utf-8")
    os.symlink("user@host.1234:1700000000", tmp_path / ".#famine.yaml")  # what Emacs leaves
    assert [r.id for r in load_rules(tmp_path).rules] == ["famine"]


# -- reloads -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["fifo term list", "alias bomb", "deep nesting", "rule file is /dev/zero"]
)
async def test_a_reload_keeps_the_old_rules_tells_admins_and_the_watcher_lives_on(
    tmp_path: Path, name: str
) -> None:
    folder = tmp_path / "rules"
    (folder / "terms").mkdir(parents=True)
    (folder / "famine.yaml").write_text(RULE, encoding="utf-8")
    told: list[str] = []

    async def notify(text: str) -> None:
        told.append(text)

    running = load_rules(folder)
    reloader = Reloader(folder, running, notify=notify)
    stop = asyncio.Event()
    watching = asyncio.create_task(reloader.watch(stop, interval=0.05))
    await asyncio.sleep(0.2)  # the watcher has seen the files once
    relative, make, said = CASES[name]
    make(folder / relative)
    await wait_until(lambda: told, "the watcher never reported the hostile file")
    assert reloader.rulebook is running
    assert told[0].startswith("Rules NOT reloaded (rule files changed)")
    assert f"{folder / relative}{said}" in told[0]
    (folder / relative).unlink() if not (folder / relative).is_dir() else (
        folder / relative
    ).rmdir()
    (folder / "drought.yaml").write_text(GOOD_RULE, encoding="utf-8")
    await wait_until(lambda: reloader.rulebook.get("drought"), "a later valid edit never loaded")
    stop.set()
    await watching


async def wait_until(condition: Callable[[], object], failure: str) -> None:
    for _ in range(400):  # up to 20 s, returning as soon as it holds
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(failure)


async def test_an_unexpected_failure_keeps_the_rules_and_is_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "famine.yaml").write_text(RULE, encoding="utf-8")
    running = load_rules(tmp_path)
    told: list[str] = []

    async def notify(text: str) -> None:
        told.append(text)

    def broken(path: Path) -> None:
        raise MemoryError("injected")

    monkeypatch.setattr(reload_module, "load_rules", broken)
    reloader = Reloader(tmp_path, running, notify=notify)
    outcome = await reloader.reload("test")
    assert not outcome.ok and reloader.rulebook is running
    assert told == [outcome.message()] and "MemoryError: injected" in told[0]


async def test_a_load_that_never_ends_is_abandoned_without_blocking_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "famine.yaml").write_text(RULE, encoding="utf-8")
    running = load_rules(tmp_path)
    release = threading.Event()
    monkeypatch.setattr(reload_module, "load_rules", lambda path: release.wait())
    monkeypatch.setattr(reload_module, "LOAD_TIMEOUT", 0.5)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticking = asyncio.create_task(tick())
    outcome = await Reloader(tmp_path, running).reload("test")
    ticking.cancel()
    release.set()
    assert not outcome.ok and "loading took longer than 0.5 s" in outcome.message()
    assert ticks > 5  # the event loop kept running while the load hung


def test_a_running_bot_survives_hostile_rule_files_and_still_obeys_sigterm(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    feed_server.route("/feed", body=rss("Nothing of note happened."))
    config = one_feed_config(
        tmp_path, feed_server.url("/feed"), rules, "defaults:\n  interval: 1s\n"
    )
    bot = Running(config, tmp_path)
    try:
        bot.wait_for("cycle done")
        os.mkfifo(rules / "terms" / "x.txt")
        bot.proc.send_signal(signal.SIGHUP)
        bot.wait_for(f"{rules / 'terms' / 'x.txt'}: term list x.txt is a named pipe (FIFO)")
        (rules / "bomb.yaml").write_text(alias_bomb(), encoding="utf-8")
        bot.wait_for(f"{rules / 'bomb.yaml'}: expands to more than 200,000 values")
        (rules / "deep.yaml").write_text(deep(), encoding="utf-8")
        bot.wait_for(f"{rules / 'deep.yaml'}:3: nested more than 100 levels deep")
        for name in ("terms/x.txt", "bomb.yaml", "deep.yaml"):
            (rules / name).unlink()
        (rules / "famine.yaml").write_text(RULE.replace("Famine", "Famine warnings"))
        bot.wait_for("Rules reloaded (rule files changed)")
        feed_server.route("/feed", body=rss("Nothing.", "Aid groups warn of famine in the city."))
        bot.wait_for("Famine warnings")
        os.mkfifo(rules / "terms" / "y.txt")
        bot.proc.send_signal(signal.SIGHUP)
        bot.wait_for("term list y.txt is a named pipe (FIFO)")
    finally:
        assert bot.stop() == 0
