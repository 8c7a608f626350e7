"""`alertbot health` and `alertbot status` against a real store in a temporary folder."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bot.cli import main
from bot.cli.ops import run_health, run_status
from bot.models import Feed, Item, Match
from bot.store import SentAlert, Store

NOW = 1_700_000_000.0


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("ALERTBOT_CONFIG", "ALERTBOT_DATABASE", "TELEGRAM_BOT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "alertbot.yaml"
    path.write_text(
        "feeds:\n"
        "  - {name: fast, url: 'http://127.0.0.1:9/a', interval: 5m}\n"
        "  - {name: slow, url: 'http://127.0.0.1:9/b', interval: 1h}\n"
        "  - {name: off, url: 'http://127.0.0.1:9/c', interval: 10s, enabled: false}\n"
    )
    return path


def database(config: Path) -> Path:
    return config.parent / "state" / "alertbot.db"


def record_cycle(config: Path, finished: float) -> None:
    with Store(database(config), clock=lambda: finished) as store:
        store.record_cycle(finished - 3, finished, {"feeds": 2, "new_items": 5})


def health(config: Path, now: float = NOW) -> int:
    return run_health(argparse.Namespace(config=config), clock=lambda: now)


def test_health_without_a_database(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert health(config) == 1
    assert capsys.readouterr().err == (
        f"unhealthy: no database at {database(config)} yet: has `alertbot run` started?\n"
    )
    assert not database(config).exists(), "health must not create the database"


def test_health_before_any_cycle(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Store(database(config)).close()
    assert health(config) == 1
    err = capsys.readouterr().err
    assert err == f"unhealthy: no poll cycle has finished yet (database {database(config)})\n"


def test_health_after_a_recent_cycle(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record_cycle(config, NOW - 14 * 60)  # within 3 x 5m (the shortest enabled interval)
    assert health(config) == 0
    assert capsys.readouterr().out == "healthy\n"


def test_health_when_the_last_cycle_is_stale(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record_cycle(config, NOW - 16 * 60)
    assert health(config) == 1
    assert capsys.readouterr().err == (
        "unhealthy: the last poll cycle finished 16m ago, more than 15m "
        "(3 x the shortest feed interval): is the poller stuck?\n"
    )


def test_health_with_a_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("feeds:\n  - name: a\n    url: example.org\n")
    assert run_health(argparse.Namespace(config=bad)) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"unhealthy: {bad}:3: feeds[0].url: 'example.org' has no scheme")
    assert err.count("\n") == 1


def test_health_from_the_command_line(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["health", "--config", str(config)]) == 1
    assert capsys.readouterr().err.startswith("unhealthy: no database at ")


def test_status_prints_feeds_cycle_outbox_and_subscribers(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = [NOW - 60]
    with Store(database(config), clock=lambda: clock[0]) as store:
        store.sync_feeds(
            [Feed("fast", "http://127.0.0.1:9/a"), Feed("slow", "http://127.0.0.1:9/b")]
        )
        store.record_fetch("fast", next_fetch=NOW + 240)
        store.record_feed_error("slow", "HTTP 500", next_fetch=NOW + 600)
        store.record_feed_error("slow", "HTTP 500", next_fetch=NOW + 600)
        store.record_cycle(NOW - 63, NOW - 60, {"feeds": 1, "new_items": 4})
        store.add_subscriber(1)
        store.add_subscriber(2)
        store.subscribe(1, ["kursk", "port-strikes"])
        store.subscribe(2, ["kursk"])
        item = Item("fast", "u1", "story-1", "Kursk", "http://x/1", None, "Kursk text")
        match = Match("kursk", "Kursk", "high", (), ("Kursk",))
        store.record_item(item, [match], [match])
        (row, _) = store.due_outbox(NOW, 10)
        store.mark_failed(row.id, "Forbidden: bot was blocked by the user")
        for reader in (1, 7):  # two readers tapped "Not relevant" under the same alert
            store.add_feedback(SentAlert(row.id, 1, row.alert, 5), reader, match)
    assert run_status(argparse.Namespace(config=config), clock=lambda: NOW) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"database: {database(config)}"
    assert out[1] == "last cycle: finished 1m ago (took 3.0s): feeds 1, new_items 4"
    assert out[2] == "feeds: 3, failing 1, disabled 1"
    assert out[3] == "  fast: ok, last success 1m ago, next fetch in 4m, 1 item seen"
    assert out[4] == (
        "  slow: failing (2 errors in a row, last: HTTP 500), never fetched successfully, "
        "next fetch in 10m, 0 items seen"
    )
    assert out[5] == "  off: disabled in the configuration"
    assert out[6] == "outbox: 1 pending, 0 sent, 1 failed, 0 cancelled"
    assert out[7] == f"  failed: row {row.id} to chat 1: Forbidden: bot was blocked by the user"
    assert out[8] == "subscribers per topic:"
    assert {"  kursk: 2", "  port-strikes: 1"} <= set(out[9:])
    assert "marked not relevant per topic:" in out
    assert "  kursk: 2 marks on 1 story" in out


def test_status_without_a_database(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_status(argparse.Namespace(config=config)) == 1
    assert capsys.readouterr().err == (
        f"alertbot status: no database at {database(config)} yet: run `alertbot run` first\n"
    )
