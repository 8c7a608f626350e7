"""Durations as people write them in rules and configuration: 30s, 10m, 6h, 1d, or seconds."""

from __future__ import annotations

import argparse
import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*")


def parse_duration(value: object) -> float:
    """Seconds in `value`; raises ValueError saying what is accepted."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration; write e.g. 30s, 10m, 6h or 1d")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"{value!r} is negative; a duration is 0 or more")
        return float(value)
    m = _DURATION.fullmatch(str(value).lower()) if isinstance(value, str) else None
    if not m:
        raise ValueError(f"{value!r} is not a duration; write e.g. 30s, 10m, 6h or 1d")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def duration_argument(value: str) -> str:
    """An argparse `type` for duration options: checked when the command line is read (a bad
    one ends in argparse's usage error, exit 2), kept as written for the reports."""
    try:
        parse_duration(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def format_duration(seconds: float) -> str:
    """The shortest exact way to write `seconds` (3600 -> '1h')."""
    for unit in ("w", "d", "h", "m"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def approximate(seconds: float) -> str:
    """A duration for people reading a report: '45s', '5m', '1.5h', '3d' (never negative)."""
    seconds = max(0.0, seconds)
    for unit in ("d", "h", "m"):
        size = _UNITS[unit]
        if seconds >= size:
            exact = seconds % size == 0
            return f"{seconds / size:.0f}{unit}" if exact else f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"
