"""Converters from YAML nodes to setting values; each error names the file, line and fix."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import yaml

from bot.durations import parse_duration

FEED_SCHEMES = ("http", "https", "file")


class _Reader(Protocol):
    """What a converter needs of the config reader (bot.config._Reader): errors, scalars, base."""

    base: Path

    def error(self, node: yaml.Node | None, key: str, message: str) -> Exception: ...

    def scalar(self, node: yaml.Node) -> Any: ...


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return f"{node.value!r}"


Convert = Callable[["_Reader", yaml.Node, str], Any]


def _duration(positive: bool) -> Convert:
    def convert(r: _Reader, node: yaml.Node, key: str) -> float | None:
        raw = r.scalar(node)
        if raw is None:
            return None  # the default
        if not isinstance(raw, str | int | float):
            raise r.error(node, key, f"expected a duration such as 10m, got {_kind(node)}")
        try:
            seconds = parse_duration(raw)
        except ValueError as exc:
            raise r.error(node, key, str(exc)) from None
        if positive and seconds <= 0:
            raise r.error(node, key, "must be longer than zero, e.g. 10m")
        return seconds

    return convert


def _integer(low: int, high: int | None = None, optional: bool = False) -> Convert:
    def convert(r: _Reader, node: yaml.Node, key: str) -> int | None:
        raw = r.scalar(node)
        if raw is None and optional:
            return None
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise r.error(node, key, f"expected a whole number, got {_kind(node)}")
        if raw < low or (high is not None and raw > high):
            upper = f" and at most {high}" if high is not None else ""
            raise r.error(node, key, f"{raw} is out of range; use at least {low}{upper}")
        return raw

    return convert


def _string(optional: bool = True) -> Convert:
    def convert(r: _Reader, node: yaml.Node, key: str) -> str | None:
        if r.scalar(node) is None:
            if optional:
                return None
            raise r.error(node, key, "expected text, got nothing (null)")
        # The written text, so that YAML 1.1 does not turn a feed named `off` into False.
        if not isinstance(node, yaml.ScalarNode) or node.value == "":
            raise r.error(node, key, f"expected text, got {_kind(node)}")
        return str(node.value)

    return convert


def _choice(*choices: str) -> Convert:
    def convert(r: _Reader, node: yaml.Node, key: str) -> str:
        raw = r.scalar(node)
        text = str(raw).lower() if isinstance(raw, str) else None
        if text not in choices:
            raise r.error(node, key, f"expected one of {', '.join(choices)}, got {_kind(node)}")
        return text if key != "logging.level" else text.upper()

    return convert


def _bool(r: _Reader, node: yaml.Node, key: str) -> bool:
    raw = r.scalar(node)
    if not isinstance(raw, bool):
        raise r.error(node, key, f"expected true or false, got {_kind(node)}")
    return raw


def _path(r: _Reader, node: yaml.Node, key: str) -> Path | None:
    text = _string()(r, node, key)
    return None if text is None else (r.base / Path(text).expanduser()).resolve()


def _url(r: _Reader, node: yaml.Node, key: str) -> str:
    text = _string(optional=False)(r, node, key).strip()
    parts = urlsplit(text)
    if not parts.scheme or (parts.scheme not in FEED_SCHEMES and not parts.netloc):
        raise r.error(node, key, f"{text!r} has no scheme; write it in full, e.g. 'https://{text}'")
    if parts.scheme not in FEED_SCHEMES:
        raise r.error(node, key, f"scheme {parts.scheme!r} is not supported; use http or https")
    if parts.scheme != "file" and not parts.netloc:
        raise r.error(node, key, f"{text!r} has no host; write e.g. 'https://example.org/feed'")
    return text


def _api_url(r: _Reader, node: yaml.Node, key: str) -> str | None:
    text = _string()(r, node, key)
    if text is not None and urlsplit(text).scheme not in ("http", "https"):
        raise r.error(
            node, key, f"{text!r} is not an http(s) address; write e.g. 'http://host:8081/bot'"
        )
    return text


def _id_list(r: _Reader, node: yaml.Node, key: str) -> list[int]:
    raw = r.scalar(node)
    if raw is None:
        return []
    if not isinstance(node, yaml.SequenceNode):
        raise r.error(
            node, key, f"expected a list of Telegram ids, e.g. [12345], got {_kind(node)}"
        )
    ids = []
    for item in node.value:
        value = r.scalar(item)
        if isinstance(value, bool) or not isinstance(value, int):
            raise r.error(item, key, f"{_kind(item)} is not a Telegram id; ids are whole numbers")
        ids.append(value)
    return ids


def _admin_ids(r: _Reader, node: yaml.Node, key: str) -> set[int]:
    return set(_id_list(r, node, key))


def _access(r: _Reader, node: yaml.Node, key: str) -> str | list[int]:
    raw = r.scalar(node)
    if raw == "open":
        return "open"
    if isinstance(node, yaml.SequenceNode):
        return _id_list(r, node, key)
    raise r.error(node, key, f"expected 'open' or a list of chat ids, got {_kind(node)}")


def _networks(r: _Reader, node: yaml.Node, key: str) -> tuple[str, ...]:
    """Address ranges (10.0.0.0/8, fd00::/8) or single addresses, each checked."""
    if isinstance(node, yaml.ScalarNode) and r.scalar(node) is None:
        return ()
    if not isinstance(node, yaml.SequenceNode):
        raise r.error(node, key, f"expected a list of address ranges, got {_kind(node)}")
    out = []
    for item in node.value:
        raw = r.scalar(item)
        try:
            out.append(str(ipaddress.ip_network(str(raw), strict=False)))
        except ValueError:
            raise r.error(
                item, key, f"{raw!r} is not an address range; write e.g. 10.0.0.0/8 or fd00::/8"
            ) from None
    return tuple(out)


def _headers(r: _Reader, node: yaml.Node, key: str) -> dict[str, str]:
    if not isinstance(node, yaml.MappingNode):
        raise r.error(node, key, f"expected a mapping of header names to values, got {_kind(node)}")
    out = {}
    for name_node, value_node in node.value:
        out[str(name_node.value)] = _string(optional=False)(
            r, value_node, f"{key}.{name_node.value}"
        )
    return out
