"""YAML read with line numbers kept, so every problem can be reported as FILE:LINE.

Rule files are trusted to be rules, not to be harmless: only regular files up to MAX_FILE_BYTES
are read (a FIFO, a device such as /dev/zero behind a symlink, a folder or a symlink loop is a
`FILE: message` problem, never a hang or a MemoryError); nesting deeper than MAX_NESTING is
refused from the parser's event stream before anything recursive sees it; and YAML aliases may
expand to at most MAX_VALUES values, so an alias bomb ("billion laughs") is refused at once.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.errors import Problem
from bot.rules.text import is_text

MAX_FILE_BYTES = 1_000_000  # the shipped rules are 2-6 KB; a 10 MB file took 18 s to load
MAX_NESTING = 100  # mappings and lists inside each other; the rule language needs about 10
MAX_VALUES = 200_000  # values after alias expansion: more than a 1 MB file can honestly hold
_FAST = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when installed: 10x faster


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
    data = read_bytes(path, source)
    if data is None:
        return None
    known = len(source.problems)
    if not is_text(data):
        source.problem(1, "not a text file (binary, or not UTF-8): save it as UTF-8 YAML")
        return None
    text = data.decode("utf-8")
    try:
        node = _compose(text, source, _FAST)
    except yaml.YAMLError:
        # libyaml words its errors differently: the problem is told in PyYAML's words
        try:
            node = _compose(text, source, yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            source.problem(
                error_line(exc, text), f"YAML syntax error: {exc.problem or exc.context}"
            )
            return None
        except yaml.YAMLError as exc:
            source.problem(1, f"YAML error: {exc}")
            return None
    if len(source.problems) > known:  # nested too deeply
        return None
    if node is None:
        source.problem(1, "the file is empty")
        return None
    try:
        return _plain(node, source, _Budget())
    except _TooMany:
        source.problem(
            0, f"expands to more than {MAX_VALUES:,} values (YAML aliases inside aliases?); "
            "write the lists out or split the file",
        )  # fmt: skip
        return None


def read_bytes(path: Path, source: Source, line: int = 0, what: str = "the file") -> bytes | None:
    """The bytes of a regular file of at most MAX_FILE_BYTES; None after recording why not.

    Never blocks on a FIFO or reads a device: the file is opened without blocking and checked
    to be a regular file on the descriptor actually read (so a swap after the check is seen)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        source.problem(line, f"cannot read {what}: {_why(exc)}")
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            source.problem(line, f"{what} is {_kind(info.st_mode)}, not a regular file")
            return None
        if info.st_size > MAX_FILE_BYTES:
            source.problem(line, _too_big(what, info.st_size))
            return None
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(MAX_FILE_BYTES + 1)  # a file that grows meanwhile is cut here
    except OSError as exc:
        source.problem(line, f"cannot read {what}: {_why(exc)}")
        return None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        source.problem(line, _too_big(what, len(data)))
        return None
    return data


def _too_big(what: str, size: int) -> str:
    return (
        f"{what} is {size / 1e6:.1f} MB, over the {MAX_FILE_BYTES / 1e6:g} MB limit for rule "
        "files and term lists; split it into several files"
    )


def _why(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "a symlink loop (the link points back at itself)"
    if exc.errno == errno.ENOENT and os.path.islink(exc.filename or ""):
        return "a broken symlink (its target does not exist)"
    return exc.strerror or str(exc)


def _kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket"))  # fmt: skip
    return next((name for test, name in kinds if test(mode)), "a special file")


def _compose(text: str, source: Source, loader: Any) -> yaml.Node | None:
    """The node graph, unless nesting is too deep (recorded); YAMLError on a syntax error."""
    return yaml.compose(text, Loader=loader) if _shallow_enough(text, source, loader) else None


def _shallow_enough(text: str, source: Source, loader: Any) -> bool:
    """Refuse nesting deeper than MAX_NESTING, from events (composing it would recurse)."""
    depth = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_NESTING:
                line = event.start_mark.line + 1 if event.start_mark else 1
                source.problem(line, f"nested more than {MAX_NESTING} levels deep")
                return False
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return True


class _TooMany(Exception):
    pass


class _Budget:
    """How many more values alias expansion may produce."""

    def __init__(self) -> None:
        self.left = MAX_VALUES

    def spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise _TooMany


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


def _plain(node: yaml.Node, source: Source, budget: _Budget) -> Any:
    budget.spend()
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out = LocatedDict()
        out.line, out.key_lines = line, {}
        for key_node, value_node in node.value:
            key = _plain(key_node, source, budget)
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
            out[key], out.key_lines[key] = _plain(value_node, source, budget), key_line
        return out
    if isinstance(node, yaml.SequenceNode):
        seq = LocatedList(_plain(item, source, budget) for item in node.value)
        seq.line, seq.item_lines = line, [item.start_mark.line + 1 for item in node.value]
        return seq
    try:
        return _constructor.construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        source.problem(line, f"cannot read this value: {exc}")
        return None
