"""`alertbot run` and `alertbot feeds` as people use them: real processes, real HTTP, signals."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from feedserver import FeedServer, conditional
from runbot import (
    KURSK,
    PORT,
    ROOT,
    alertbot,
    db_rows,
    rss,
    start,
    start_running,
    wait_for,
    write_config,
)

from bot.cli import main
from bot.store import Store


@pytest.fixture(autouse=True)
def _no_alertbot_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("ALERTBOT_", "TELEGRAM_")):
            monkeypatch.delenv(name)


@pytest.fixture
def proc_cleanup() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


# -- the bundled example ---------------------------------------------------------------------


def test_run_once_with_the_bundled_example_prints_alerts(tmp_path: Path) -> None:
    (tmp_path / "rules").symlink_to(ROOT / "rules")
    result = alertbot("run", "--once", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for title in ("PRC military exercises around Taiwan", "Fighting in Kursk Oblast",
                  "Strikes on Black Sea and Danube ports and shipping"):  # fmt: skip
        assert title in out
    assert "Russian Offensive Campaign Assessment, October 14, 2024" in out
    assert "Drones hit Odesa port" in out
    assert "stock options" not in out and "Shakhtar" not in out
    # printed alerts mark only decisive terms, as Telegram bolds them: no country demonyms,
    # and under a quarter of the printed text
    assert "**Russian**" not in out and "**Ukrainian**" not in out
    marked = sum(len(m) for m in re.findall(r"\*\*(.+?)\*\*", out))
    assert 0 < marked < len(out.replace("**", "")) / 4
    again = alertbot("run", "--once", cwd=tmp_path)
    assert again.returncode == 0 and again.stdout == ""  # nothing new the second time


# -- failures are recorded and shown --------------------------------------------------------


def test_dry_run_prints_alerts_and_owes_nobody_a_message(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    feed_server.route("/wire", body=rss(KURSK))
    config = write_config(tmp_path, {"wire": feed_server.url("/wire")})
    database = tmp_path / "state" / "test.db"
    database.parent.mkdir()
    with Store(database) as store:
        store.add_subscriber(7)
        store.subscribe(7, ["kursk"])
    result = alertbot("run", "--once", "--dry-run", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Fighting in Kursk Oblast" in result.stdout
    # printed instead of sent: a later run with a token must not send it after all
    assert db_rows(database, "SELECT count(*) FROM outbox") == [(0,)]


def test_failing_feed_is_shown_by_feeds_and_the_others_alert(
    tmp_path: Path, feed_server: FeedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    feed_server.route("/good", handler=conditional(rss(KURSK)))
    feed_server.route("/bad", status=500, body=b"boom")
    config = write_config(
        tmp_path, {"good": feed_server.url("/good"), "bad": feed_server.url("/bad")}
    )
    assert main(["run", "--once", "--config", str(config)]) == 0
    assert "Report 1" in capsys.readouterr().out
    assert main(["feeds", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    good, bad = out.split("bad  ")[0], out.split("bad  ")[1]
    assert "status: ok" in good and "items seen: 1" in good
    assert "status: failing" in bad and "consecutive errors: 1" in bad
    assert "last error:" in bad and "500" in bad and "next fetch:" in bad
    # a second run alerts nothing new, and asks conditionally
    assert main(["run", "--once", "--config", str(config)]) == 0
    assert "Report 1" not in capsys.readouterr().out
    assert "if-none-match" in feed_server.requests_for("/good")[-1].headers


def test_feeds_before_any_run_and_invalid_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, {"a": "https://example.org/feed"})
    assert main(["feeds", "--config", str(config)]) == 0
    assert "a  https://example.org/feed\n  status: not fetched yet" in capsys.readouterr().out
    assert main(["feeds", "--config", str(tmp_path / "missing.yaml")]) == 1
    assert "configuration file not found" in capsys.readouterr().err


def test_invalid_rules_stop_run_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "bad.yaml").write_text("id: bad\ntitle: Bad\nlevel: extreme\nmatch: {all: [x]}\n")
    config = write_config(tmp_path, {"a": "https://example.org/feed"})
    config.write_text(config.read_text().replace(str(ROOT / "rules"), str(rules)))
    assert main(["run", "--once", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "the rules are invalid" in err and "bad.yaml:3:" in err


# -- processes: lock, signals, SIGKILL -------------------------------------------------------


def test_second_process_refuses_and_sigterm_stops_the_first(
    tmp_path: Path, feed_server: FeedServer, proc_cleanup: list[subprocess.Popen[str]]
) -> None:
    feed_server.route("/f", body=rss(KURSK))
    config = write_config(tmp_path, {"f": feed_server.url("/f")})
    first, _ = start_running(config, tmp_path, proc_cleanup)
    second = alertbot("run", "--once", "--config", str(config), cwd=tmp_path)
    assert second.returncode == 1
    assert "another alertbot process (pid" in second.stderr
    assert "is already running on" in second.stderr and "Traceback" not in second.stderr
    first.send_signal(signal.SIGTERM)
    out, err = first.communicate(timeout=20)
    assert first.returncode == 0, err
    assert out.count("Report 1") == 1


def test_sigkill_mid_cycle_loses_no_alert_and_repeats_none(
    tmp_path: Path, feed_server: FeedServer, proc_cleanup: list[subprocess.Popen[str]]
) -> None:
    texts = [KURSK, PORT, KURSK.replace("Kursk", "Kursk Oblast")]
    feed_server.route("/fast", body=rss(*texts))
    # the slow feed's reports are its own (the same text from two feeds would be one story)
    slow = [
        "Russian drones struck the port of Izmail overnight, damaging grain silos.",
        "Ukrainian troops repelled an assault near Sudzha in the Kursk region on Tuesday.",
    ]
    feed_server.route("/slow", body=rss(*slow, start=10), delay=60)
    config = write_config(
        tmp_path, {"fast": feed_server.url("/fast"), "slow": feed_server.url("/slow")}
    )
    database = tmp_path / "state" / "test.db"
    with Store(database) as store:
        store.subscribe(7, ["kursk", "port-strikes"])
    first = start("run", "--once", "--config", str(config), cwd=tmp_path)
    proc_cleanup.append(first)
    wait_for(
        lambda: db_rows(database, "SELECT count(*) FROM items WHERE feed='fast'") == [(3,)], first
    )
    wait_for(lambda: len(feed_server.requests_for("/slow")) == 1, first)
    first.kill()  # SIGKILL while the slow feed is still being fetched
    out1, _ = first.communicate(timeout=10)
    feed_server.route("/slow", body=rss(*slow, start=10))
    second = alertbot("run", "--once", "--config", str(config), cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    printed = out1 + second.stdout
    titles = ["Report 1", "Report 2", "Report 3", "Report 10", "Report 11"]
    assert [printed.count(t + "\n") for t in titles] == [1, 1, 1, 1, 1]
    # without a token alerts are printed, not queued: the record of what alerted is `matches`
    alerted = db_rows(
        database, "SELECT DISTINCT story_key FROM matches WHERE alerted_at IS NOT NULL"
    )
    assert sorted(key for (key,) in alerted) == sorted(
        f"https://example.org/r/{n}" for n in (1, 2, 3, 10, 11)
    )
    assert db_rows(database, "SELECT count(*) FROM outbox") == [(0,)]


# -- OPML ------------------------------------------------------------------------------------


def test_opml_export_then_import_round_trips(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path, {"isw": "https://example.org/rss?a=1&b=2", "kyiv": "https://k/"}
    )
    assert main(["feeds", "export", "--config", str(config)]) == 0
    opml = tmp_path / "feeds.opml"
    opml.write_text(capsys.readouterr().out)
    assert 'xmlUrl="https://example.org/rss?a=1&amp;b=2"' in opml.read_text()
    assert main(["feeds", "import", str(opml)]) == 0
    out = capsys.readouterr().out
    assert "  - name: isw\n    url: https://example.org/rss?a=1&b=2\n" in out
    assert "  - name: kyiv\n    url: https://k/\n" in out


def test_opml_import_of_nested_outlines_makes_unique_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    opml = tmp_path / "reader.opml"
    opml.write_text(
        '<opml version="1.0"><body><outline text="War">'
        '<outline text="ISW: Updates" xmlUrl="https://a/rss"/>'
        '<outline title="ISW: Updates" text="x" xmlUrl="https://b/rss"/>'
        "</outline></body></opml>"
    )
    assert main(["feeds", "import", str(opml)]) == 0
    out = capsys.readouterr().out
    assert "name: isw-updates\n" in out and "name: isw-updates-2\n" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("<opml><body>", "not an OPML file"),
        ("<rss/>", "the root element is <rss>"),
        ("<opml><body><outline text='folder'/></body></opml>", "no feeds"),
    ],
)
def test_opml_import_errors_are_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    opml = tmp_path / "in.opml"
    if content is not None:
        opml.write_text(content)
    assert main(["feeds", "import", str(opml)]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_feeds_and_status_show_throttling_and_full_text_failures(
    tmp_path: Path, feed_server: FeedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    feed_server.route("/busy", status=429, headers={"Retry-After": "3600"}, body=b"slow down")
    feed_server.route("/article", status=500, body=b"down")
    teaser = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><item>'
        f"<title>Teaser</title><link>{feed_server.url('/article')}</link><guid>t1</guid>"
        "<description>Short teaser…</description></item></channel></rss>"
    )
    feed_server.route("/teasers", body=teaser.encode())
    config = write_config(
        tmp_path, {"busy": feed_server.url("/busy"), "teasers": feed_server.url("/teasers")}
    )
    text = config.read_text().replace(
        f"url: {feed_server.url('/teasers')}\n",
        f"url: {feed_server.url('/teasers')}\n    full_text: always\n",
    )  # the article server is on loopback, which links from feeds may reach only when allowed
    config.write_text(text + "full_text:\n  allow_addresses: [127.0.0.0/8]\n")
    assert main(["run", "--once", "--config", str(config)]) == 0
    capsys.readouterr()
    assert main(["feeds", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    busy, teasers = out.split("teasers  ")[0], out.split("teasers  ")[1]
    assert "status: throttled" in busy and "429" in busy and "until" in busy
    assert "status: ok" in teasers and "full-text failures: 1" in teasers
    assert "last full-text failure: full text: article" in teasers and "500" in teasers
    assert main(["status", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "throttled 1" in out and "with full-text failures 1" in out
    assert "  busy: throttled: " in out and "status: ok" not in out
    assert "  teasers: ok, " in out and "full text failed 1x" in out
