"""Chaos benchmark: SIGKILL a running bot at random moments while stories keep coming.

    python bench/chaos.py [--kills 30] [--chats 4] [--latency 0.2] [--seed 1]

A local feed server publishes a new story (matching the shipped `kursk` rule) about every
second; `alertbot run` (a real process, Telegram through the fake Bot API of
tests/fakebotapi.py, which records every message) is killed with SIGKILL after a random
1.5-5 s, then started again, --kills times. Then it runs once more until every story has
reached every chat (--chats private chats, all following the topic), and stops with SIGTERM.
The fake Bot API takes --latency seconds to answer after it has delivered a message (about
Telegram's round trip), so some kills land between delivery and confirmation, as they would.

A copy of a story beyond the first is a repeat; it is charged to the kill that came last
before it was sent. The delivery promise: nothing is lost, and a kill repeats at most the one
message in flight per chat. The last line is what the README quotes:

    kills=N stories=S lost=0 repeated=R max_repeats_per_chat_per_kill=M
"""

from __future__ import annotations

import argparse
import bisect
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from email.utils import formatdate
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fakebotapi import FakeBotAPI, fake_token  # noqa: E402
from feedserver import FeedServer  # noqa: E402

from bot.store import Store  # noqa: E402

TOKEN = fake_token(123123, "c")
PLACES = ["Sudzha", "Korenevo", "Lgov", "Rylsk", "Glushkovo", "Tetkino", "Oleshnya"]


class Publisher:
    """A growing RSS feed: one new story every `every` seconds until stopped."""

    def __init__(self, server: FeedServer, every: float) -> None:
        self.server, self.every = server, every
        self.count = 0
        self.stop = threading.Event()
        self._publish()

    def _publish(self) -> None:
        items = "".join(self._item(n) for n in range(self.count, 0, -1))
        body = (
            '<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>'
            f"<link>https://example.org/</link>{items}</channel></rss>"
        ).encode()
        self.server.route("/wire", body=body, headers={"Content-Type": "application/rss+xml"})

    @staticmethod
    def _item(n: int) -> str:
        place = PLACES[n % len(PLACES)]
        text = (
            f"Dispatch {n}: Russian forces shelled {place} in the Kursk region overnight, "
            f"local officials said; {n * 7 % 50 + 2} buildings were damaged."
        )
        return (
            f"<item><title>Story {n} from {place}</title><link>https://example.org/s/{n}</link>"
            f"<guid>urn:story:{n}</guid><pubDate>{formatdate(usegmt=True)}</pubDate>"
            f"<description>{text}</description></item>"
        )

    def run(self) -> None:
        while not self.stop.wait(self.every):
            self.count += 1
            self._publish()


def start_bot(workdir: Path, config: Path, api: FakeBotAPI) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALERTBOT_", "TELEGRAM_"))}
    env |= {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "ALERTBOT_TELEGRAM_API_URL": api.base_url,
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--config", str(config)],
        cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def story_of(text: str) -> int | None:
    found = re.search(r"Story (\d+) from", text)
    return int(found.group(1)) if found else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--chats", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    chats = list(range(701, 701 + args.chats))
    api = FakeBotAPI().start()
    server = FeedServer().start()
    sent_at: list[tuple[float, int, int]] = []  # (when, chat, story) of every message
    original = api._api_sendMessage

    def recording(params: dict) -> object:
        answer = original(params)
        story = story_of(str(params.get("text", "")))
        if story is not None and not isinstance(answer, tuple):
            sent_at.append((time.monotonic(), params["chat_id"], story))
        time.sleep(args.latency)  # delivered; the answer is on its way
        return answer

    api._api_sendMessage = recording  # type: ignore[method-assign]
    for http in (api._server, server._httpd):  # a killed client resets its connections
        http.handle_error = lambda *_: None  # type: ignore[union-attr, method-assign]
    publisher = Publisher(server, every=1.0)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        config = workdir / "alertbot.yaml"
        config.write_text(
            f"feeds:\n  - name: wire\n    url: {server.url('/wire')}\n    interval: 1s\n"
            f"    backfill: 1000\n    full_text: never\npaths:\n  rules: {ROOT / 'rules'}\n"
            "  database: state/chaos.db\n"
        )
        with Store(workdir / "state" / "chaos.db") as store:
            for chat in chats:
                store.add_subscriber(chat)
                store.subscribe(chat, ["kursk"])
        threading.Thread(target=publisher.run, daemon=True).start()
        kills: list[float] = []
        started = time.monotonic()
        for _ in range(args.kills):
            bot = start_bot(workdir, config, api)
            time.sleep(rng.uniform(1.5, 5.0))  # the bot needs about 1.5 s to start sending
            bot.send_signal(signal.SIGKILL)
            bot.wait()
            kills.append(time.monotonic())
        publisher.stop.set()
        stories = publisher.count
        bot = start_bot(workdir, config, api)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            got = {(c, s) for _, c, s in sent_at}
            if all((c, s) in got for c in chats for s in range(1, stories + 1)):
                break
            time.sleep(0.5)
        bot.send_signal(signal.SIGTERM)
        bot.wait(timeout=30)
        seconds = time.monotonic() - started
    api.stop()
    server.stop()
    copies = Counter((c, s) for _, c, s in sent_at)
    lost = sum(1 for c in chats for s in range(1, stories + 1) if copies[(c, s)] == 0)
    repeated = sum(n - 1 for n in copies.values() if n > 1)
    seen: set[tuple[int, int]] = set()
    per_kill: Counter[tuple[int, int]] = Counter()
    for when, chat, story in sorted(sent_at):
        if (chat, story) in seen:
            per_kill[(chat, bisect.bisect(kills, when))] += 1
        seen.add((chat, story))
    print(f"chats={len(chats)} messages={len(sent_at)} seconds={seconds:.0f}")
    print(
        f"kills={len(kills)} stories={stories} lost={lost} repeated={repeated} "
        f"max_repeats_per_chat_per_kill={max(per_kill.values(), default=0)}"
    )
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
