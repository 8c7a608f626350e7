"""python-telegram-bot as its authors intend, admin notices across restarts, and the edges
of issue 14 seen from outside: the CLI's chat lookup, YAML problem lines, cycle logs."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from fakebotapi import FakeBotAPI
from telegram import Bot
from telegram.constants import ParseMode
from telegram.warnings import PTBUserWarning

from bot.models import Feed
from bot.rules.files import load_rules
from bot.store import Store
from bot.telegram.admin import admin_notifier, watch_feeds
from bot.telegram.app import build_application
from bot.telegram.deliver import rate_limiter
from bot.telegram.handlers import BotOptions

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
TOKEN = "777:APP-secret-token"
RULES = Path(__file__).resolve().parents[2] / "rules"
ADMIN = 99


def test_one_defaults_no_job_queue_no_unused_post_init(tmp_path):
    with Store(tmp_path / "a.db") as store:
        app = build_application(TOKEN, store, load_rules(RULES), BotOptions())
    assert app.bot.defaults.parse_mode == ParseMode.HTML
    assert app.bot.defaults.link_preview_options.is_disabled is True
    assert app.post_init is None
    with pytest.warns(PTBUserWarning, match="No `JobQueue` set up"):
        assert app.job_queue is None


def test_the_rate_limiters_logger_is_filtered_not_silenced(caplog):
    rate_limiter()
    logger = logging.getLogger("telegram.ext.AIORateLimiter")
    assert logger.level <= logging.INFO  # not raised: its INFO and WARNING records still count
    caplog.set_level(logging.INFO, logger=logger.name)
    logger.info("Rate limit hit. Retrying after %f seconds", 1.0)
    logger.error("Rate limit hit after maximum of %d retries", 0)
    assert [r.getMessage() for r in caplog.records] == [
        "Rate limit hit. Retrying after 1.000000 seconds"
    ]


async def _watch_once(db: Path, bot: Bot, now: float) -> None:
    """One admin-notice pass of a freshly started bot (a restart reads the store anew)."""
    stop = asyncio.Event()
    with Store(db, clock=lambda: now) as store:
        task = asyncio.create_task(
            watch_feeds(store, admin_notifier(bot, {ADMIN}), stop, every=0.01, clock=lambda: now)
        )
        await asyncio.sleep(0.2)
        stop.set()
        await task


async def test_admins_hear_once_per_incident_across_restarts_and_on_recovery(
    bot_api: FakeBotAPI, tmp_path: Path
):
    db, t0 = tmp_path / "alertbot.db", 1_000_000.0
    clock = [t0]
    with Store(db, clock=lambda: clock[0]) as store:
        store.sync_feeds([Feed("flaky", "https://e.org/feed", interval=600)])
        for minutes in range(0, 50, 10):  # five failures within 40 minutes: not yet worth telling
            clock[0] = t0 + minutes * 60
            store.record_feed_error("flaky", "HTTP 500", next_fetch=clock[0] + 600)
    async with Bot(TOKEN, base_url=bot_api.base_url) as bot:
        await _watch_once(db, bot, t0 + 40 * 60)
        assert bot_api.texts(ADMIN) == []
        await _watch_once(db, bot, t0 + 61 * 60)  # failing for an hour: told once
        await _watch_once(db, bot, t0 + 90 * 60)  # a restart: not told again
        [notice] = bot_api.texts(ADMIN)
        assert notice.startswith("⚠️ Feed flaky has been failing for 1.0h (5 errors): HTTP 500")
        with Store(db, clock=lambda: t0 + 95 * 60) as store:
            store.record_fetch("flaky", next_fetch=t0 + 105 * 60)
        await _watch_once(db, bot, t0 + 96 * 60)
        await _watch_once(db, bot, t0 + 97 * 60)
    assert len(bot_api.texts(ADMIN)) == 2
    assert bot_api.texts(ADMIN)[1].startswith("⚠️ Feed flaky works again.")
    assert all(
        m.link_preview_options in (None, {"is_disabled": True}) for m in bot_api.messages(ADMIN)
    )


def test_idle_cycles_log_at_debug_busy_ones_one_info_line(caplog):
    from bot.app import _log_cycle
    from bot.poll.cycle import CycleStats

    caplog.set_level(logging.DEBUG, logger="bot.app")
    _log_cycle(CycleStats(feeds=3, unchanged=3))
    _log_cycle(CycleStats(feeds=3, fetched=1, unchanged=2, items_new=2, matched=1))
    levels = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert levels == [
        ("DEBUG", "cycle done: feeds 3, unchanged 3"),
        ("INFO", "cycle done: feeds 3, fetched 1, unchanged 2, items_new 2, matched 1"),
    ]


def test_yaml_errors_name_the_problems_own_line(tmp_path, capsys):
    from bot.cli import main

    rules = tmp_path / "rules"
    rules.mkdir()
    # line 5 lacks its colon; PyYAML notices at line 6
    (rules / "bad.yaml").write_text(
        "id: bad\ntitle: Bad\nlevel: high\nthrottle: 6h\nwithin sentence\nmatch: {all: [x]}\n"
    )
    assert main(["rules", "check", str(rules)]) == 1
    assert f"{rules / 'bad.yaml'}:5: YAML syntax error" in capsys.readouterr().err
    config = tmp_path / "alertbot.yaml"
    config.write_text("feeds:\n  - name: isw\n    url: 'https://e.org/feed\n    interval: 10m\n")
    assert main(["subscribers", "list", "--config", str(config)]) == 1
    assert f"{config}:3: YAML syntax error" in capsys.readouterr().err


GARBAGE = [
    (200, "<html>Bad gateway</html>"),
    (200, '{"ok": true, "result": null}'),
    (200, '{"ok": true, "result": {"id": "x"}}'),
    (200, '{"ok": true, "result": [1, 2]}'),
    (502, "upstream down"),
    (200, '{"ok": false}'),
]


@pytest.mark.parametrize("status, body", GARBAGE)
def test_subscribers_add_never_a_traceback_when_getchat_answers_garbage(
    bot_api, tmp_path, monkeypatch, capsys, status, body
):
    from bot.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ALERTBOT_DATABASE", str(tmp_path / "cli.db"))
    monkeypatch.setenv("ALERTBOT_RULES", str(RULES))
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("ALERTBOT_TELEGRAM_API_URL", bot_api.base_url)
    for action in ("add", "remove"):
        bot_api.fail("raw", method="getChat", status=status, body=body)
        args = ["subscribers", action, "--chat", "@warnews", "--topic", "kursk"]
        assert main(args) == 1
        err = capsys.readouterr().err
        assert err.startswith("alertbot subscribers: ") and "look up @warnews" in err
        assert "Traceback" not in err and TOKEN not in err and len(err.splitlines()) == 1
