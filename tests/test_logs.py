"""Logging: one line per event, plain or JSON, and the bot token never printed."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest
from fakebotapi import fake_token

from bot.config import Settings
from bot.logs import REDACTED, setup_from_settings, setup_logging

TOKEN = fake_token(123456789, "a")
OTHER_TOKEN = fake_token(987654321, "b")


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    yield out
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_alertbot", False)]:
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_plain_line_with_level_logger_and_extras(stream: io.StringIO) -> None:
    setup_logging("plain", "INFO", stream=stream)
    logging.getLogger("bot.poll.cycle").info(
        "fetched %s items", 12, extra={"feed": "isw", "ms": 40}
    )
    logging.getLogger("bot.poll.cycle").debug("not shown at INFO")
    (line,) = lines(stream)
    assert line.endswith(" INFO bot.poll.cycle: fetched 12 items feed=isw ms=40")
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO ", line)


def test_json_one_object_per_line(stream: io.StringIO) -> None:
    setup_logging("json", "DEBUG", stream=stream)
    logging.getLogger("bot.telegram.deliver").warning("retry in %ds", 3, extra={"chat": 42})
    logging.getLogger("bot.telegram.deliver").debug("second")
    first, second = (json.loads(line) for line in lines(stream))
    assert first["level"] == "WARNING" and first["logger"] == "bot.telegram.deliver"
    assert first["message"] == "retry in 3s" and first["chat"] == 42
    assert first["time"].endswith("Z")
    assert second["message"] == "second"


def test_exception_stays_on_one_line(stream: io.StringIO) -> None:
    setup_logging("plain", stream=stream)
    try:
        raise RuntimeError("boom\nsecond line")
    except RuntimeError:
        logging.getLogger("bot").exception("cycle failed")
    (line,) = lines(stream)
    assert "cycle failed | Traceback (most recent call last):" in line
    assert "RuntimeError: boom | second line" in line


def test_json_exception_field(stream: io.StringIO) -> None:
    setup_logging("json", stream=stream)
    try:
        raise ValueError("bad")
    except ValueError:
        logging.getLogger("bot").exception("oops")
    (line,) = lines(stream)
    assert json.loads(line)["exception"].endswith("ValueError: bad")


@pytest.mark.parametrize("fmt", ["plain", "json"])
def test_token_redacted_from_message_args_extras_and_tracebacks(
    stream: io.StringIO, fmt: str
) -> None:
    setup_logging(fmt, "DEBUG", secrets=["s3cr3t-configured", None], stream=stream)
    log = logging.getLogger("bot.telegram.handlers")
    log.info("POST https://api.telegram.org/bot%s/sendMessage", TOKEN)
    log.info("configured secret %s", "s3cr3t-configured", extra={"url": f"/bot{OTHER_TOKEN}/x"})
    try:
        raise ConnectionError(f"cannot reach /bot{TOKEN}/getUpdates")
    except ConnectionError:
        log.exception("network")
    text = stream.getvalue()
    assert TOKEN not in text and OTHER_TOKEN not in text and "s3cr3t-configured" not in text
    assert text.count(REDACTED) == 4
    assert len(lines(stream)) == 3


def test_httpx_request_logs_are_quiet(stream: io.StringIO) -> None:
    setup_logging("plain", "DEBUG", stream=stream)
    logging.getLogger("httpx").info("HTTP Request: POST https://api.telegram.org/bot%s", TOKEN)
    logging.getLogger("httpx").warning("a warning still shows")
    (line,) = lines(stream)
    assert line.endswith("WARNING httpx: a warning still shows")


def test_setup_twice_keeps_one_handler(stream: io.StringIO) -> None:
    setup_logging("plain", stream=io.StringIO())
    setup_logging("plain", stream=stream)
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_alertbot", False)]
    assert len(ours) == 1
    logging.getLogger("bot").warning("once")
    assert len(lines(stream)) == 1


def test_setup_from_settings_redacts_the_configured_token(stream: io.StringIO) -> None:
    settings = Settings(telegram_token="42:tok-xyz", log_format="json", log_level="WARNING")
    setup_from_settings(settings, stream=stream)
    logging.getLogger("bot").info("hidden at WARNING")
    logging.getLogger("bot").error("token is %s", "42:tok-xyz")
    (line,) = lines(stream)
    assert json.loads(line)["message"] == f"token is {REDACTED}"
