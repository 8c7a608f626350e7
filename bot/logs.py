"""Logging setup: one line per event, plain or JSON, the bot token redacted from every record."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Iterable
from typing import Any, TextIO

REDACTED = "[REDACTED]"
# Any Telegram bot token, configured or not (a URL logged by a library, a pasted token).
TOKEN_PATTERN = re.compile(r"(?<!\d)\d{5,}:[A-Za-z0-9_-]{30,}")
# httpx writes every request URL (the bot token in it) at INFO; pymorphy3 announces each
# dictionary it loads for `~word` terms at INFO, which is noise on every start and reload
QUIET_LOGGERS = ("httpx", "httpcore", "pymorphy3")

# Attributes every LogRecord has; anything else came from `extra=` and is shown as a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
# Secrets known to this process (the configured token): every redaction removes them too.
_SECRETS: set[str] = set()


def add_secrets(secrets: Iterable[str | None]) -> None:
    """Make `redact` (and every RedactFilter) remove these strings from now on."""
    _SECRETS.update(s for s in secrets if s)


def redact(text: str) -> str:
    """The text with known secrets and anything shaped like a bot token replaced.

    The same redaction as the logs', for error texts that are stored, shown or sent.
    """
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return TOKEN_PATTERN.sub(REDACTED, text)


class RedactFilter(logging.Filter):
    """Replaces secrets (and anything shaped like a bot token) in the message, args and extras."""

    def __init__(self, secrets: Iterable[str | None] = ()):
        super().__init__()
        add_secrets(secrets)  # `redact` removes every secret known to the process

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        record.exc_info = None  # the redacted exc_text is what gets printed
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in _extras(record).items():
            if isinstance(value, str):
                setattr(record, key, redact(value))
        return True


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


def _timestamp(record: logging.LogRecord) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


class PlainFormatter(logging.Formatter):
    """`TIME LEVEL logger: message key=value ...`, an exception folded onto the same line."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [_timestamp(record), record.levelname, f"{record.name}:", record.getMessage()]
        parts += [f"{k}={_plain(v)}" for k, v in _extras(record).items()]
        line = " ".join(parts)
        for extra_text in (record.exc_text, record.stack_info):
            if extra_text:
                line += " | " + " | ".join(s.strip() for s in extra_text.splitlines() if s.strip())
        return line.replace("\n", "\\n")


def _plain(value: Any) -> str:
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if (not text or " " in text) else text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _extras(record).items():
            event.setdefault(key, value)
        if record.exc_text:
            event["exception"] = record.exc_text
        if record.stack_info:
            event["stack"] = record.stack_info
        return json.dumps(event, ensure_ascii=False, default=str)


def setup_logging(
    fmt: str = "plain",
    level: str | int = "INFO",
    secrets: Iterable[str | None] = (),
    stream: TextIO | None = None,
) -> logging.Handler:
    """Install one handler on the root logger (replacing an earlier one of ours); returns it."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_alertbot", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler._alertbot = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if fmt == "json" else PlainFormatter())
    handler.addFilter(RedactFilter(secrets))
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler


def setup_from_settings(settings: Any, stream: TextIO | None = None) -> logging.Handler:
    """setup_logging() with the configured format and level, redacting the configured token."""
    return setup_logging(
        settings.log_format, settings.log_level, [settings.telegram_token], stream=stream
    )
