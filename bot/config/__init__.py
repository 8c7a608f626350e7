"""Settings: the YAML config file plus environment overrides, validated with file:line errors."""

from __future__ import annotations

import argparse
import difflib
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from bot.config.values import (
    Convert,
    _access,
    _admin_ids,
    _api_url,
    _bool,
    _choice,
    _duration,
    _headers,
    _integer,
    _kind,
    _networks,
    _path,
    _string,
    _url,
)
from bot.durations import parse_duration
from bot.errors import ConfigError
from bot.models import Feed
from bot.rules.yamlsrc import error_line

__all__ = ["Settings", "load_settings", "parse_duration"]  # parse_duration: one parser for all

DEFAULT_CONFIG_NAME = "alertbot.yaml"
EXAMPLE_FEED = Path(__file__).resolve().parents[1] / "example" / "feed.xml"


@dataclass(frozen=True)
class Settings:
    """Everything the bot needs to run; built by load_settings(). The token never shows in repr."""

    feeds: list[Feed] = field(default_factory=list)
    rules_path: Path = Path("rules")
    database: Path = Path("state/alertbot.db")
    telegram_token: str | None = field(default=None, repr=False)
    telegram_api_url: str | None = None
    admin_ids: set[int] = field(default_factory=set)
    access: str | list[int] = "open"  # "open", or the chat ids allowed to use the bot
    default_interval: float = 600.0
    default_backfill: int = 0
    user_agent: str | None = None
    max_bytes: int = 10_000_000
    timeout: float = 30.0
    allow_addresses: tuple[str, ...] = ()  # internal ranges article links may reach
    prune_after: float = 30 * 86400.0
    log_format: str = "plain"  # plain | json
    log_level: str = "INFO"
    metrics_port: int | None = None
    config_path: Path | None = None  # None: the bundled example configuration

    @property
    def has_token(self) -> bool:
        """Whether alerts go to Telegram (otherwise they are printed)."""
        return bool(self.telegram_token)

    @property
    def shortest_interval(self) -> float:
        """The shortest polling interval among enabled feeds (the default when there are none)."""
        return min((f.interval for f in self.feeds if f.enabled), default=self.default_interval)


def add_config_option(parser: argparse.ArgumentParser) -> None:
    """The `--config FILE` option every command that reads the configuration takes."""
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        default=argparse.SUPPRESS,  # a subcommand's absent option must not hide its parent's
        help="configuration file (default: $ALERTBOT_CONFIG, ./alertbot.yaml, or the example)",
    )


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The settings named by a command's --config option (or found the usual way)."""
    return load_settings(getattr(args, "config", None))


def load_settings(path: Path | None = None, env: Mapping[str, str] = os.environ) -> Settings:
    """Read the configuration file (or the bundled example when there is none), then the env."""
    path, named_by = _config_path(path, env)
    values = _read_file(path, named_by) if path is not None else _example_values()
    _apply_env(values, env)
    return Settings(**values)


def _config_path(path: Path | None, env: Mapping[str, str]) -> tuple[Path | None, str]:
    """The file to read and what named it (--config, ALERTBOT_CONFIG, ./alertbot.yaml); None: the
    bundled example."""
    if path is not None:
        return path.expanduser().resolve(), "--config"
    if env.get("ALERTBOT_CONFIG", "").strip():
        return Path(env["ALERTBOT_CONFIG"]).expanduser().resolve(), "ALERTBOT_CONFIG"
    default = Path(DEFAULT_CONFIG_NAME)
    # Anything at ./alertbot.yaml was meant to be read: a folder (what Docker mounts when the host
    # file is missing) or a dangling link must stop alertbot, never quietly run the example.
    if default.exists() or default.is_symlink():
        return default.resolve(), f"./{DEFAULT_CONFIG_NAME}"
    return None, ""


def _example_values() -> dict[str, Any]:
    """The bundled example: the package's sample feed, ./rules and ./state, no network, no token."""
    # its links are placeholders: fetching the articles would break the "no network" promise
    feed = Feed(
        name="example", url=EXAMPLE_FEED.as_uri(), interval=600.0, backfill=1000, full_text="never"
    )
    return {
        "feeds": [feed],
        "rules_path": Path("rules").resolve(),
        "database": Path("state/alertbot.db").resolve(),
        "config_path": None,
    }


def _read_file(path: Path, named_by: str) -> dict[str, Any]:
    if path.exists() and not path.is_file():
        raise ConfigError(_not_a_file(path, named_by))
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        instead = {
            "--config": "run without --config",
            "ALERTBOT_CONFIG": "unset ALERTBOT_CONFIG",
        }.get(named_by, f"remove the link {named_by}")
        raise ConfigError(
            f"{path}: configuration file not found; copy alertbot.example.yaml there, "
            f"or {instead} to use the bundled example"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the configuration file: {exc}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = error_line(exc, text)
        raise ConfigError(
            f"{path}:{line}: YAML syntax error: {exc.problem}; check indentation and quoting"
        ) from None
    return _Reader(path).settings(root)


def _not_a_file(path: Path, named_by: str) -> str:
    """Why a path that exists cannot be the configuration, and what to do about it."""
    if path.is_dir():
        return (
            f"{path}: is a folder, not a configuration file (named by {named_by}); Docker mounts "
            "an empty folder when the file to mount is missing on the host: remove the folder "
            "(rmdir) and copy alertbot.example.yaml to that name"
        )
    return (
        f"{path}: is not a regular file (named by {named_by}); name a YAML configuration file, "
        "e.g. a copy of alertbot.example.yaml"
    )


class _Reader:
    """Turns the composed YAML node tree into Settings values, keeping line numbers for errors."""

    def __init__(self, path: Path):
        self.path = path
        self.base = path.parent
        self._constructor = yaml.SafeLoader("")

    def error(self, node: yaml.Node | None, key: str, message: str) -> ConfigError:
        line = node.start_mark.line + 1 if node is not None else 1
        return ConfigError(f"{self.path}:{line}: {key}: {message}")

    def settings(self, root: yaml.Node | None) -> dict[str, Any]:
        if root is None:
            raise self.error(None, "feeds", "the file is empty; list at least the feeds to watch")
        top = self.mapping(root, "", _SECTIONS)
        values: dict[str, Any] = {"config_path": self.path}
        token_where = ""
        for section in _FIELDS:
            if section in top:
                keys = self.mapping(top[section][1], section, _SECTIONS[section])
                for key, (key_node, node) in keys.items():
                    name, convert = _FIELDS[section][key]
                    value = convert(self, node, f"{section}.{key}")
                    if value is not None:  # null means "the default"
                        values[name] = value
                    if section == "telegram" and key == "token_file":
                        token_where = (
                            f"{self.path}:{key_node.start_mark.line + 1}: {section}.{key}: "
                        )
        values.setdefault("rules_path", self.base / "rules")
        values.setdefault("database", self.base / "state" / "alertbot.db")
        if "feeds" not in top:
            raise self.error(root, "feeds", "missing; list the feeds to watch (see the example)")
        values["feeds"] = self.feeds(top["feeds"][1], values)
        token_file = values.pop("token_file", None)
        if token_file is not None:
            values["telegram_token"] = _read_token(token_file, token_where)
        return values

    def mapping(
        self, node: yaml.Node, where: str, allowed: Mapping[str, Any] | tuple[str, ...]
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """Keys of a mapping node, each checked against `allowed` (did-you-mean on a typo)."""
        if not isinstance(node, yaml.MappingNode):
            what = where or "configuration"
            raise self.error(node, what, f"expected a mapping of keys, got {_kind(node)}")
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            dotted = f"{where}.{key}" if where else key
            if key in out:
                raise self.error(key_node, dotted, "duplicate key; keep only one")
            if key not in allowed:
                raise self.error(key_node, dotted, _unknown(key, allowed))
            out[key] = (key_node, value_node)
        return out

    def scalar(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            return node  # the caller reports the wrong kind
        return self._constructor.construct_object(node, deep=True)

    def feeds(self, node: yaml.Node, values: dict[str, Any]) -> list[Feed]:
        if isinstance(node, yaml.ScalarNode) and self.scalar(node) is None:
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(node, "feeds", f"expected a list of feeds, got {_kind(node)}")
        feeds: list[Feed] = []
        first_line: dict[str, int] = {}
        for index, feed_node in enumerate(node.value):
            feed = self.feed(feed_node, f"feeds[{index}]", values)
            if feed.name in first_line:
                raise self.error(
                    feed_node,
                    f"feeds[{index}].name",
                    f"duplicate feed name {feed.name!r} (first at line {first_line[feed.name]}); "
                    "give each feed its own name",
                )
            first_line[feed.name] = feed_node.start_mark.line + 1
            feeds.append(feed)
        return feeds

    def feed(self, node: yaml.Node, where: str, values: dict[str, Any]) -> Feed:
        keys = self.mapping(node, where, _FEED_FIELDS)
        for required in ("name", "url"):
            if required not in keys:
                raise self.error(
                    node, where, f"missing {required!r}; every feed needs name and url"
                )
        kwargs: dict[str, Any] = {
            "interval": values.get("default_interval", 600.0),
            "backfill": values.get("default_backfill", 0),
        }
        for key, (_, value_node) in keys.items():
            value = _FEED_FIELDS[key](self, value_node, f"{where}.{key}")
            if value is not None:  # null means "the default"
                kwargs[key] = value
        return Feed(**kwargs)


def _unknown(key: str, allowed: Mapping[str, Any] | tuple[str, ...]) -> str:
    if key == "token":
        return (
            "don't write the bot token in the configuration file; put it in a file named by "
            "telegram.token_file, or set TELEGRAM_BOT_TOKEN"
        )
    close = difflib.get_close_matches(key, list(allowed), n=1)
    if close:
        return f"unknown key; did you mean {close[0]!r}?"
    return "unknown key; known keys here: " + ", ".join(sorted(allowed))


def _read_token(path: Path, where: str) -> str:
    """The token file's content; errors name the file, never its content."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except PermissionError:
        reason = _unreadable(path)
        raise ConfigError(f"{where}cannot read the token file {path}: {reason}") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "unreadable"
        raise ConfigError(f"{where}cannot read the token file {path}: {reason}") from None
    if not token:
        raise ConfigError(f"{where}the token file {path} is empty; put the bot token in it")
    return token


def _unreadable(path: Path) -> str:
    """Why this process may not read a file, and the fix (for a Docker secret, on the host)."""
    me = os.geteuid()
    try:
        st = path.stat()
        whose = f"it belongs to uid {st.st_uid} with mode {stat.S_IMODE(st.st_mode):04o}"
    except OSError:
        whose = "its folder cannot be opened"
    # Compose bind-mounts a file secret with the host file's owner and mode (its uid, gid and
    # mode options apply to Swarm only): the fix is made on the host, to the file compose names
    return (
        f"permission denied: alertbot runs as uid {me} and {whose}; make it readable for uid "
        f"{me}: `chmod 644` it inside a folder only its owner can open (`chmod 700`). For a "
        f"Docker secret, do that on the host: `chmod 700 secrets && chmod 644 secrets/{path.name}`"
        " (README, Deploy with Docker)"
    )


_FIELDS: dict[str, dict[str, tuple[str, Convert]]] = {
    "defaults": {
        "interval": ("default_interval", _duration(positive=True)),
        "backfill": ("default_backfill", _integer(0)),
        "user_agent": ("user_agent", _string()),
        "max_bytes": ("max_bytes", _integer(1024)),
        "timeout": ("timeout", _duration(positive=True)),
    },
    "paths": {"rules": ("rules_path", _path), "database": ("database", _path)},
    "telegram": {
        "token_file": ("token_file", _path),
        "api_url": ("telegram_api_url", _api_url),
        "admin_ids": ("admin_ids", _admin_ids),
        "access": ("access", _access),
    },
    "logging": {
        "format": ("log_format", _choice("plain", "json")),
        "level": ("log_level", _choice("debug", "info", "warning", "error")),
    },
    "metrics": {"port": ("metrics_port", _integer(1, 65535, optional=True))},
    "store": {"prune_after": ("prune_after", _duration(positive=True))},
    "full_text": {"allow_addresses": ("allow_addresses", _networks)},
}
_SECTIONS: dict[str, Any] = {"feeds": None, **_FIELDS}
_FEED_FIELDS: dict[str, Convert] = {
    "name": _string(optional=False),
    "url": _url,
    "interval": _duration(positive=True),
    "backfill": _integer(0),
    "enabled": _bool,
    "headers": _headers,
    "full_text": _choice("auto", "always", "never"),
}


# -- environment overrides ---------------------------------------------------------------------


def _apply_env(values: dict[str, Any], env: Mapping[str, str]) -> None:
    """ALERTBOT_* and TELEGRAM_* variables win over the file; relative paths resolve from cwd."""
    if env.get("TELEGRAM_BOT_TOKEN", "").strip():
        values["telegram_token"] = env["TELEGRAM_BOT_TOKEN"].strip()
    elif env.get("TELEGRAM_BOT_TOKEN_FILE"):
        token_path = Path(env["TELEGRAM_BOT_TOKEN_FILE"]).expanduser()
        values["telegram_token"] = _read_token(token_path, "TELEGRAM_BOT_TOKEN_FILE: ")
    if env.get("ALERTBOT_TELEGRAM_API_URL"):
        url = env["ALERTBOT_TELEGRAM_API_URL"]
        if urlsplit(url).scheme not in ("http", "https"):
            raise ConfigError(
                f"ALERTBOT_TELEGRAM_API_URL: {url!r} is not an http(s) address; "
                "write e.g. http://127.0.0.1:8081/bot"
            )
        values["telegram_api_url"] = url
    if env.get("ALERTBOT_DATABASE"):
        values["database"] = Path(env["ALERTBOT_DATABASE"]).expanduser().resolve()
    if env.get("ALERTBOT_RULES"):
        values["rules_path"] = Path(env["ALERTBOT_RULES"]).expanduser().resolve()
    if env.get("ALERTBOT_ADMIN_IDS", "").strip():
        values["admin_ids"] = _env_ids(env["ALERTBOT_ADMIN_IDS"])


def _env_ids(text: str) -> set[int]:
    ids = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            ids.add(int(part))
        except ValueError:
            raise ConfigError(
                f"ALERTBOT_ADMIN_IDS: {part!r} is not a Telegram user id; "
                "write whole numbers separated by commas, e.g. 12345,67890"
            ) from None
    return ids
