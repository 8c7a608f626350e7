"""YAML read with line numbers kept, so every problem can be reported as FILE:LINE."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.errors import Problem
from bot.rules.text import is_text


class LocatedDict(dict):
    """A YAML mapping that remembers the line of each key (1-based) and its own line."""

    line: int = 1
    key_lines: dict[str, int]


class LocatedList(list):
    """A YAML sequence that remembers the line of each item (1-based) and its own line."""

    line: int = 1
    item_lines: list[int]


def line_of(value: Any, default: int = 1) -> int:
    """The line a located mapping or sequence starts on."""
    return getattr(value, "line", default)


@dataclass
class Source:
    """A YAML document being read, and the problems found in it so far."""

    path: str
    problems: list[Problem] = field(default_factory=list)

    def problem(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.path, line, message))


def read_yaml(path: Path, source: Source) -> Any | None:
    """The document in `path` with lines kept, or None after recording why it can't be read."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        source.problem(1, f"cannot read the file: {exc.strerror or exc}")
        return None
    if not is_text(data):
        source.problem(1, "not a text file (binary, or not UTF-8): save it as UTF-8 YAML")
        return None
    text = data.decode("utf-8")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        source.problem(error_line(exc, text), f"YAML syntax error: {exc.problem or exc.context}")
        return None
    except yaml.YAMLError as exc:
        source.problem(1, f"YAML error: {exc}")
        return None
    if node is None:
        source.problem(1, "the file is empty")
        return None
    return _plain(node, source)


def error_line(exc: yaml.MarkedYAMLError, text: str) -> int:
    """The line the problem is on (1-based), which is not always PyYAML's problem mark.

    PyYAML marks where it noticed the problem, often the start of the next line: a key
    without its colon is noticed at the next token, an unclosed quote or bracket at the end
    of the file. The problem's own line is then where that token or collection began (the
    context mark), or, for "mapping values are not allowed here", where the text before the
    colon began (a plain scalar PyYAML ran on into the next line).
    """
    problem, context = exc.problem_mark, exc.context_mark
    why, where = exc.problem or "", exc.context or ""
    began_earlier = context is not None and (problem is None or problem.line > context.line)
    if began_earlier and where.startswith(("while scanning a", "while parsing a flow")):
        return context.line + 1
    if why.startswith("mapping values are not allowed") and problem is not None:
        start = _last_scalar_line(text)
        if start is not None and start <= problem.line:
            return start + 1
    mark = problem or context
    return mark.line + 1 if mark else 1


def _last_scalar_line(text: str) -> int | None:
    """The 0-based line where the last scalar before a scanning error began."""
    line = None
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if isinstance(token, yaml.ScalarToken):
                line = token.start_mark.line
    except yaml.YAMLError:
        pass
    return line


_constructor = yaml.SafeLoader("")


def _plain(node: yaml.Node, source: Source) -> Any:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out = LocatedDict()
        out.line, out.key_lines = line, {}
        for key_node, value_node in node.value:
            key = _plain(key_node, source)
            key_line = key_node.start_mark.line + 1
            if not isinstance(key, str | int | float | bool) or key is None:
                source.problem(key_line, "a key must be plain text")
                continue
            key = str(key)
            if key in out:
                source.problem(
                    key_line, f"duplicate key '{key}' (first on line {out.key_lines[key]})"
                )
                continue
            out[key], out.key_lines[key] = _plain(value_node, source), key_line
        return out
    if isinstance(node, yaml.SequenceNode):
        seq = LocatedList(_plain(item, source) for item in node.value)
        seq.line, seq.item_lines = line, [item.start_mark.line + 1 for item in node.value]
        return seq
    try:
        return _constructor.construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        source.problem(line, f"cannot read this value: {exc}")
        return None
