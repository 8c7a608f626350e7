"""Configuration: the YAML file, environment overrides, and every error's file:line message."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from bot.config import EXAMPLE_FEED, Settings, load_settings, parse_duration
from bot.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
TOKEN = "123456789:AAHsecret-token-VALUE_xyz"

MINIMAL = """\
feeds:
  - name: isw
    url: https://example.org/isw.xml
"""


def write(tmp_path: Path, text: str, name: str = "alertbot.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env or {})
    message = str(caught.value)
    assert "Traceback" not in message
    return message


# -- durations -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("10m", 600), ("6h", 21600), ("1d", 86400), ("45", 45), ("1.5h", 5400),
     (" 10M ", 600), (90, 90), (2.5, 2.5), ("0", 0)],
)  # fmt: skip
def test_parse_duration(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10 minutes", "m", "10x", "-5", "ten", True, -3])
def test_parse_duration_rejects_with_a_clear_message(text: str | float) -> None:
    with pytest.raises(ValueError, match=r"is not a duration; write e.g. 30s|negative"):
        parse_duration(text)


# -- a good file -----------------------------------------------------------------------------


def test_example_configuration_loads_with_every_key(tmp_path: Path) -> None:
    settings = load_settings(REPO / "alertbot.example.yaml", {})
    assert settings.config_path == REPO / "alertbot.example.yaml"
    assert [f.name for f in settings.feeds] == ["isw", "example-local"]
    isw = settings.feeds[0]
    assert (isw.interval, isw.backfill, isw.enabled, isw.full_text) == (1800.0, 0, True, "auto")
    assert settings.feeds[1].enabled is False
    assert settings.feeds[1].interval == 600.0  # from defaults.interval
    assert settings.rules_path == REPO / "rules"
    assert settings.database == REPO / "state" / "alertbot.db"
    assert settings.telegram_token is None and settings.access == "open"
    assert (settings.log_format, settings.log_level, settings.metrics_port) == (
        "plain",
        "INFO",
        None,
    )
    assert settings.prune_after == 30 * 86400
    assert settings.shortest_interval == 1800.0  # disabled feeds don't count


def test_full_file_values_and_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    path = write(
        tmp_path / "conf",
        """\
        feeds:
          - name: a
            url: http://127.0.0.1:8000/a.xml
            headers: {X-Key: abc, X-Num: 5}
            full_text: never
          - name: b
            url: file:///tmp/b.xml
            interval: 45
            backfill: 3
        defaults: {interval: 2h, backfill: 1, user_agent: ua/1, max_bytes: 2048, timeout: 5s}
        paths: {rules: ../my-rules, database: db/bot.db}
        telegram: {api_url: "http://127.0.0.1:8081/bot", admin_ids: [1, 2], access: [5, -100]}
        logging: {format: JSON, level: debug}
        metrics: {port: 9108}
        store: {prune_after: 7d}
        """,
    )
    s = load_settings(path, {})
    a, b = s.feeds
    assert a.headers == {"X-Key": "abc", "X-Num": "5"} and a.full_text == "never"
    assert (a.interval, a.backfill) == (7200.0, 1)
    assert (b.interval, b.backfill) == (45.0, 3)
    assert s.rules_path == tmp_path / "my-rules"
    assert s.database == tmp_path / "conf" / "db" / "bot.db"
    assert (s.user_agent, s.max_bytes, s.timeout) == ("ua/1", 2048, 5.0)
    assert s.telegram_api_url == "http://127.0.0.1:8081/bot"
    assert s.admin_ids == {1, 2} and s.access == [5, -100]
    assert (s.log_format, s.log_level, s.metrics_port) == ("json", "DEBUG", 9108)
    assert s.prune_after == 7 * 86400
    assert s.shortest_interval == 45.0


def test_names_are_text_as_written(tmp_path: Path) -> None:
    text = "feeds:\n  - {name: off, url: 'http://x/a'}\n  - {name: 1.50, url: 'http://x/b'}\n"
    assert [f.name for f in load_settings(write(tmp_path, text), {}).feeds] == ["off", "1.50"]


def test_null_means_the_default(tmp_path: Path) -> None:
    text = MINIMAL + "    interval: null\ndefaults: {interval: 2m, timeout: ~}\n"
    s = load_settings(write(tmp_path, text), {})
    assert (s.feeds[0].interval, s.timeout) == (120.0, 30.0)


def test_paths_default_next_to_the_config_file(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, MINIMAL), {})
    assert s.rules_path == tmp_path / "rules"
    assert s.database == tmp_path / "state" / "alertbot.db"


def test_no_config_file_uses_the_bundled_example(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings(None, {})
    assert s.config_path is None
    assert [f.url for f in s.feeds] == [EXAMPLE_FEED.as_uri()]
    assert s.feeds[0].url.startswith("file://") and s.feeds[0].url.endswith("bot/example/feed.xml")
    assert s.rules_path == tmp_path / "rules"
    assert s.database == tmp_path / "state" / "alertbot.db"
    assert s.telegram_token is None


def test_alertbot_yaml_in_the_working_folder_is_found(tmp_path: Path, monkeypatch) -> None:
    write(tmp_path, MINIMAL)
    monkeypatch.chdir(tmp_path)
    assert load_settings(None, {}).config_path == tmp_path / "alertbot.yaml"


def test_alertbot_config_env_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL, name="other.yaml")
    assert load_settings(None, {"ALERTBOT_CONFIG": str(path)}).config_path == path


# -- environment overrides -------------------------------------------------------------------


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = write(
        tmp_path,
        MINIMAL + "telegram: {api_url: 'http://a/bot', admin_ids: [1]}\npaths: {rules: r}\n",
    )
    env = {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "ALERTBOT_TELEGRAM_API_URL": "http://127.0.0.1:9/bot",
        "ALERTBOT_DATABASE": "elsewhere/x.db",
        "ALERTBOT_RULES": "/srv/rules",
        "ALERTBOT_ADMIN_IDS": " 42, 7 ,",
    }
    s = load_settings(path, env)
    assert s.telegram_token == TOKEN and s.has_token
    assert s.telegram_api_url == "http://127.0.0.1:9/bot"
    assert s.database == tmp_path / "elsewhere" / "x.db"
    assert s.rules_path == Path("/srv/rules")
    assert s.admin_ids == {42, 7}


def test_token_file_from_config_and_from_env(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(TOKEN + "\n")
    (tmp_path / "other").write_text("999:other\n")
    path = write(tmp_path, MINIMAL + "telegram: {token_file: token}\n")
    assert load_settings(path, {}).telegram_token == TOKEN
    env_file = {"TELEGRAM_BOT_TOKEN_FILE": str(tmp_path / "other")}
    assert load_settings(path, env_file).telegram_token == "999:other"
    both = {**env_file, "TELEGRAM_BOT_TOKEN": TOKEN}
    assert load_settings(path, both).telegram_token == TOKEN


def test_token_never_in_repr_or_str(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, MINIMAL), {"TELEGRAM_BOT_TOKEN": TOKEN})
    assert s.telegram_token == TOKEN
    assert TOKEN not in repr(s) and TOKEN not in str(s) and "secret" not in repr(s)
    assert TOKEN not in repr(Settings(telegram_token=TOKEN))


def test_missing_token_file_names_the_file_not_a_token(tmp_path: Path) -> None:
    message = error_of(tmp_path, MINIMAL + "telegram:\n  token_file: nowhere/token\n")
    assert message.startswith(f"{tmp_path / 'alertbot.yaml'}:5: telegram.token_file: ")
    assert "cannot read the token file" in message and "nowhere/token" in message


def test_empty_token_file_from_env(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("\n")
    env = {"TELEGRAM_BOT_TOKEN_FILE": str(tmp_path / "token")}
    message = error_of(tmp_path, MINIMAL, env)
    assert message.startswith("TELEGRAM_BOT_TOKEN_FILE: the token file")
    assert "is empty; put the bot token in it" in message


def test_token_written_in_the_file_is_refused_without_echoing_it(tmp_path: Path) -> None:
    message = error_of(tmp_path, MINIMAL + f"telegram:\n  token: '{TOKEN}'\n")
    assert message.endswith(":5: telegram.token: don't write the bot token in the configuration "
                            "file; put it in a file named by telegram.token_file, or set "
                            "TELEGRAM_BOT_TOKEN")  # fmt: skip
    assert TOKEN not in message


def test_bad_admin_ids_env(tmp_path: Path) -> None:
    message = error_of(tmp_path, MINIMAL, {"ALERTBOT_ADMIN_IDS": "12,bob"})
    assert message == (
        "ALERTBOT_ADMIN_IDS: 'bob' is not a Telegram user id; "
        "write whole numbers separated by commas, e.g. 12345,67890"
    )


def test_bad_api_url_env(tmp_path: Path) -> None:
    message = error_of(tmp_path, MINIMAL, {"ALERTBOT_TELEGRAM_API_URL": "localhost:8081"})
    assert message.startswith("ALERTBOT_TELEGRAM_API_URL: 'localhost:8081' is not an http(s)")


# -- one test per file error: the line and the message ----------------------------------------


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    message = error_of(tmp_path, MINIMAL + "defaults:\n  intervall: 5m\n")
    where = f"{tmp_path / 'alertbot.yaml'}:5: defaults.intervall: "
    assert message == where + "unknown key; did you mean 'interval'?"


def test_unknown_feed_key_suggests(tmp_path: Path) -> None:
    message = error_of(tmp_path, MINIMAL + "    enabeld: false\n")
    assert message.endswith(":4: feeds[0].enabeld: unknown key; did you mean 'enabled'?")


def test_unknown_top_level_key_lists_known_keys(tmp_path: Path) -> None:
    message = error_of(tmp_path, MINIMAL + "zzz: 1\n")
    assert message.endswith(
        ":4: zzz: unknown key; known keys here: defaults, feeds, full_text, logging, metrics, "
        "paths, store, telegram"
    )


def test_wrong_type(tmp_path: Path) -> None:
    message = error_of(tmp_path, MINIMAL + "defaults:\n  max_bytes: lots\n")
    assert message.endswith(":5: defaults.max_bytes: expected a whole number, got 'lots'")


def test_wrong_type_for_a_section(tmp_path: Path) -> None:
    message = error_of(tmp_path, MINIMAL + "paths: [rules]\n")
    assert message.endswith(":4: paths: expected a mapping of keys, got a list")


def test_wrong_type_for_feeds(tmp_path: Path) -> None:
    message = error_of(tmp_path, "feeds:\n  name: x\n")
    assert message.endswith(":2: feeds: expected a list of feeds, got a mapping")


def test_wrong_boolean(tmp_path: Path) -> None:
    message = error_of(tmp_path, MINIMAL + "    enabled: sometimes\n")
    assert message.endswith(":4: feeds[0].enabled: expected true or false, got 'sometimes'")


def test_duplicate_feed_names(tmp_path: Path) -> None:
    text = MINIMAL + "  - name: isw\n    url: https://example.org/other.xml\n"
    message = error_of(tmp_path, text)
    assert message.endswith(
        ":4: feeds[1].name: duplicate feed name 'isw' (first at line 2); "
        "give each feed its own name"
    )


def test_duplicate_key(tmp_path: Path) -> None:
    message = error_of(tmp_path, MINIMAL + "metrics: {port: 1}\nmetrics: {port: 2}\n")
    assert message.endswith(":5: metrics: duplicate key; keep only one")


def test_url_without_scheme(tmp_path: Path) -> None:
    message = error_of(tmp_path, "feeds:\n  - name: a\n    url: example.org/feed.xml\n")
    assert message.endswith(
        ":3: feeds[0].url: 'example.org/feed.xml' has no scheme; "
        "write it in full, e.g. 'https://example.org/feed.xml'"
    )


def test_url_with_host_and_port_but_no_scheme(tmp_path: Path) -> None:
    message = error_of(tmp_path, "feeds:\n  - name: a\n    url: localhost:8000/f\n")
    assert message.endswith(":3: feeds[0].url: 'localhost:8000/f' has no scheme; "
                            "write it in full, e.g. 'https://localhost:8000/f'")  # fmt: skip


def test_url_with_unsupported_scheme(tmp_path: Path) -> None:
    message = error_of(tmp_path, "feeds:\n  - name: a\n    url: ftp://example.org/f\n")
    assert message.endswith(":3: feeds[0].url: scheme 'ftp' is not supported; use http or https")


def test_missing_url(tmp_path: Path) -> None:
    message = error_of(tmp_path, "feeds:\n  - name: a\n  - name: b\n    url: http://x/\n")
    assert message.endswith(":2: feeds[0]: missing 'url'; every feed needs name and url")


def test_bad_duration(tmp_path: Path) -> None:
    message = error_of(tmp_path, MINIMAL + "    interval: 10 minutes\n")
    assert message.endswith(
        ":4: feeds[0].interval: '10 minutes' is not a duration; write e.g. 30s, 10m, 6h or 1d"
    )


def test_zero_interval(tmp_path: Path) -> None:
    message = error_of(tmp_path, MINIMAL + "defaults:\n  interval: 0s\n")
    assert message.endswith(":5: defaults.interval: must be longer than zero, e.g. 10m")


def test_bad_choice(tmp_path: Path) -> None:
    message = error_of(tmp_path, MINIMAL + "logging:\n  format: xml\n")
    assert message.endswith(":5: logging.format: expected one of plain, json, got 'xml'")


def test_bad_access(tmp_path: Path) -> None:
    message = error_of(tmp_path, MINIMAL + "telegram:\n  access: closed\n")
    assert message.endswith(
        ":5: telegram.access: expected 'open' or a list of chat ids, got 'closed'"
    )


def test_bad_admin_id_in_file(tmp_path: Path) -> None:
    message = error_of(tmp_path, MINIMAL + "telegram:\n  admin_ids:\n    - 1\n    - alice\n")
    assert message.endswith(
        ":7: telegram.admin_ids: 'alice' is not a Telegram id; ids are whole numbers"
    )


def test_port_out_of_range(tmp_path: Path) -> None:
    message = error_of(tmp_path, MINIMAL + "metrics:\n  port: 70000\n")
    assert message.endswith(
        ":5: metrics.port: 70000 is out of range; use at least 1 and at most 65535"
    )


def test_missing_feeds(tmp_path: Path) -> None:
    message = error_of(tmp_path, "defaults:\n  interval: 5m\n")
    assert message.endswith(":1: feeds: missing; list the feeds to watch (see the example)")


def test_empty_file(tmp_path: Path) -> None:
    message = error_of(tmp_path, "")
    assert message.endswith(":1: feeds: the file is empty; list at least the feeds to watch")


def test_yaml_syntax_error(tmp_path: Path) -> None:
    message = error_of(tmp_path, MINIMAL + "defaults:\n  interval: 5m: 6m\n")
    assert message.startswith(f"{tmp_path / 'alertbot.yaml'}:5: YAML syntax error: ")
    assert "mapping values are not allowed here" in message
    assert message.endswith("; check indentation and quoting")


def test_config_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path / "missing.yaml", {})
    assert str(caught.value) == (
        f"{tmp_path / 'missing.yaml'}: configuration file not found; copy "
        "alertbot.example.yaml there, or run without --config to use the bundled example"
    )


def test_config_path_is_a_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a folder, not a configuration file"):
        load_settings(tmp_path, {})


@pytest.mark.parametrize("named_by", ["--config", "ALERTBOT_CONFIG", "./alertbot.yaml"])
@pytest.mark.parametrize("kind", ["folder", "fifo", "dangling link"])
def test_a_config_path_that_is_not_a_file_is_an_error_wherever_it_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, named_by: str, kind: str
) -> None:
    """Never the bundled example instead (Docker mounts an empty folder for a missing file);
    a FIFO is refused before it is opened, so nothing hangs."""
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "alertbot.yaml"
    if kind == "folder":
        config.mkdir()
    elif kind == "fifo":
        os.mkfifo(config)
    else:
        config.symlink_to(tmp_path / "gone.yaml")
    path = config if named_by == "--config" else None
    env = {"ALERTBOT_CONFIG": str(config)} if named_by == "ALERTBOT_CONFIG" else {}
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env)
    message = str(caught.value)
    shown = tmp_path / "gone.yaml" if kind == "dangling link" else config
    assert message.startswith(f"{shown}: ")
    expected = {
        "folder": f"is a folder, not a configuration file (named by {named_by}); Docker mounts",
        "fifo": f"is not a regular file (named by {named_by}); name a YAML configuration file",
        "dangling link": "configuration file not found; copy alertbot.example.yaml there, or "
        + {"--config": "run without --config", "ALERTBOT_CONFIG": "unset ALERTBOT_CONFIG",
           "./alertbot.yaml": "remove the link ./alertbot.yaml"}[named_by]
        + " to use the bundled example",
    }[kind]  # fmt: skip
    assert expected in message


def test_no_config_anywhere_runs_the_bundled_example(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None, {"ALERTBOT_CONFIG": ""})
    assert settings.config_path is None and settings.feeds[0].url == EXAMPLE_FEED.as_uri()


def test_empty_feed_name(tmp_path: Path) -> None:
    message = error_of(tmp_path, "feeds:\n  - name: ''\n    url: http://x/\n")
    assert message.endswith(":2: feeds[0].name: expected text, got ''")


def test_null_feed_url(tmp_path: Path) -> None:
    message = error_of(tmp_path, "feeds:\n  - name: a\n    url:\n")
    assert message.endswith(":3: feeds[0].url: expected text, got nothing (null)")
