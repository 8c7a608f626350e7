"""Reading rule files and shared term groups into validated Rules; loading a whole rule set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.durations import parse_duration
from bot.errors import Problem, RuleError
from bot.rules.inflect import release as release_inflection
from bot.rules.language import (
    _ID,
    FIELDS,
    LEVELS,
    MAX_DEPTH,
    MAX_SENTENCES,
    RULE_KEYS,
    WINDOWS,
    Example,
    Expr,
    Leaf,
    Rule,
    Term,
    did_you_mean,
    parse_terms,
)
from bot.rules.matcher import Rulebook
from bot.rules.yamlsrc import LocatedDict, LocatedList, Source, line_of, read_bytes, read_yaml

Groups = dict[str, tuple[Term, ...]]


def read_rule_set(path: Path) -> tuple[list[Rule], list[Problem]]:
    """All rules under `path` (folder or file) and every problem found in them."""
    if not path.exists():
        hint = (
            "no such file or folder: give the rules folder (--rules, ALERTBOT_RULES or paths.rules)"
        )
        if path.is_symlink():
            hint = "a symlink loop or a broken symlink: point it at the rules folder"
        return [], [Problem(str(path), 1, hint)]
    folder = path if path.is_dir() else path.parent
    files = sorted(_rule_files(path))
    problems: list[Problem] = []
    shared = _read_shared_groups(folder / "terms", problems)
    rules = [rule for f in files if (rule := _read_rule(f, shared, problems)) is not None]
    release_inflection()  # the `~` forms are made: the dictionaries are not needed now
    if path.is_dir() and not files:
        problems.append(Problem(str(path), 1, "no rule files (*.yaml) in this folder"))
    problems += _duplicate_ids(rules)
    return rules, problems


def _rule_files(path: Path) -> list[Path]:
    if not path.is_dir():
        return [path]
    # not only regular files: a FIFO, a device or a symlink loop named x.yaml is reported when
    # read, not skipped; hidden names (editors' lock files such as .#x.yaml) are not rules
    return [p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and _visible(p)]


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _read_shared_groups(folder: Path, problems: list[Problem]) -> Groups:
    groups: Groups = {}
    if not folder.is_dir():
        return groups
    for file in sorted(filter(_visible, folder.iterdir())):
        if file.suffix == ".txt":
            source = Source(str(file))
            groups[file.stem] = _read_term_file(file, source, 0)
            problems += source.problems
        elif file.suffix in (".yaml", ".yml"):
            source = Source(str(file))
            data = read_yaml(file, source)
            if data is not None:
                groups.update(_parse_groups(data, source, file.parent))
            problems += source.problems
    return groups


def _read_term_file(file: Path, source: Source, line: int) -> tuple[Term, ...]:
    """One term per line; '#' starts a comment; problems point into the text file."""
    raw = read_bytes(file, source, line, what=f"term list {file.name}")
    if raw is None:
        return ()
    file_source = Source(str(file))
    try:
        lines = raw.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        source.problem(line, f"term list {file.name} is not UTF-8 text")
        return ()
    terms = []
    for number, text in enumerate(lines, 1):
        text = text.split("#", 1)[0].strip() if not text.lstrip().startswith("/") else text.strip()
        if text:
            terms += _term(text, file_source, number)
    source.problems += file_source.problems
    return tuple(terms)


def _parse_groups(data: Any, source: Source, folder: Path) -> Groups:
    if not isinstance(data, dict):
        source.problem(line_of(data), "terms must be a mapping of group name -> list of terms")
        return {}
    groups: Groups = {}
    for name, value in data.items():
        line = data.key_lines.get(name, 1) if isinstance(data, LocatedDict) else 1
        known = len(source.problems)
        if isinstance(value, str):
            groups[name] = _read_term_file(folder / value, source, line)
        elif isinstance(value, list):
            groups[name] = _terms_of(value, source, line)
        else:
            source.problem(line, f"group '{name}' must be a list of terms or a .txt file name")
            continue
        if not groups[name] and len(source.problems) == known:  # else why was said already
            source.problem(line, f"group '{name}' is empty: add terms or remove it")
    return groups


def _terms_of(values: list, source: Source, line: int) -> tuple[Term, ...]:
    lines = values.item_lines if isinstance(values, LocatedList) else [line] * len(values)
    return tuple(t for v, n in zip(values, lines, strict=True) for t in _term(v, source, n))


def _term(raw: object, source: Source, line: int) -> tuple[Term, ...]:
    """The terms one written term stands for (several for `~` forms); () after a problem."""
    try:
        return parse_terms(raw)
    except ValueError as exc:
        source.problem(line, str(exc))
        return ()


def _read_rule(file: Path, shared: Groups, problems: list[Problem]) -> Rule | None:
    source = Source(str(file))
    data = read_yaml(file, source)
    rule = None
    if data is not None and not isinstance(data, dict):
        source.problem(line_of(data), "a rule file must be a mapping (id:, title:, match: ...)")
    elif data is not None:
        rule = _RuleReader(file, data, source, shared).read()
    problems += source.problems
    return rule if not source.problems else None


class _RuleReader:
    """Turns one rule file's mapping into a Rule, recording problems with their lines."""

    def __init__(self, file: Path, data: LocatedDict, source: Source, shared: Groups):
        self.file, self.data, self.source = file, data, source
        self.shared, self.groups = shared, dict(shared)
        self.local_names: set[str] = set()

    def line(self, key: str) -> int:
        return self.data.key_lines.get(key, self.data.line)

    def problem(self, key: str, message: str) -> None:
        self.source.problem(self.line(key), message)

    def read(self) -> Rule | None:
        for key in self.data:
            if key not in RULE_KEYS:
                self.problem(key, f"unknown key '{key}'{did_you_mean(key, RULE_KEYS)}")
        rule_id = self._id()
        local = _parse_groups(self.data.get("terms", {}), self.source, self.file.parent)
        self.groups.update(local)
        self.local_names = set(local)
        if "match" not in self.data:
            self.source.problem(self.data.line, "missing 'match:' (all/any/none of terms)")
            return None
        expr = self._expr(self.data["match"], self.line("match"), 0, top=True)
        if expr is None:
            return None
        item = self._item_conditions()
        return Rule(
            id=rule_id,
            title=self._text("title", rule_id),
            description=self._text("description", ""),
            level=self._choice("level", LEVELS, "medium"),
            match=expr,
            within=self._within(),
            feeds=self._names("feeds"),
            fields=self._fields(),
            throttle=self._throttle(),
            should_match=self._examples("match"),
            should_not_match=self._examples("no_match"),
            path=str(self.file),
            line=self.line("id"),
            item=item,
        )

    def _id(self) -> str:
        value = self.data.get("id", self.file.stem)
        if not isinstance(value, str) or not _ID.fullmatch(value):
            self.problem("id", f"id {value!r} must be lowercase letters, digits and dashes")
            return str(value)
        return value

    def _text(self, key: str, default: str) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str):
            self.problem(key, f"'{key}' must be text")
            return default
        return " ".join(value.split())

    def _choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.data.get(key, default)
        if value not in choices:
            hint = did_you_mean(str(value), choices)
            self.problem(key, f"'{key}' must be one of {', '.join(choices)}, not {value!r}{hint}")
            return default
        return value

    def _within(self) -> str | int:
        value = self.data.get("within", "sentence")
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        if value in WINDOWS:
            return value
        if isinstance(value, str) and value.split()[-1:] in (["sentences"], ["sentence"]):
            return self._sentences_window(value)
        self.problem(
            "within",
            "'within' must be item, paragraph, sentence, N sentences or a number of words, "
            f"not {value!r}",
        )
        return "sentence"

    def _sentences_window(self, value: str) -> str:
        """'3 sentences': N consecutive sentences (2 to MAX_SENTENCES)."""
        count = value.split()[0]
        if len(value.split()) != 2 or not count.isdigit() or not 2 <= int(count) <= MAX_SENTENCES:
            self.problem(
                "within",
                f"'within: {value}': write 'N sentences' with N from 2 to {MAX_SENTENCES} "
                "(or 'sentence' for one)",
            )
            return "sentence"
        return f"{int(count)} sentences"

    def _item_conditions(self) -> Expr | None:
        """`item:` all/any/none over the whole item, beside the per-window `match`."""
        if "item" not in self.data:
            return None
        node, line = self.data["item"], self.line("item")
        if isinstance(node, dict) and not node:
            self.source.problem(line, "item needs all:, any: and/or none:")
            return None
        if isinstance(node, dict) and set(node) == {"none"}:  # vetoes alone
            vetoes = self._items(node["none"], node.key_lines.get("none", line), 0)
            return Expr(none=vetoes) if vetoes else None
        return self._expr(node, line, 0)

    def _names(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem(key, f"'{key}' must be a list of names")
            return ()
        return tuple(value)

    def _fields(self) -> tuple[str, ...]:
        names = self._names("fields") if "fields" in self.data else FIELDS
        for name in names:
            if name not in FIELDS:
                self.problem("fields", f"unknown field '{name}': use title and/or content")
        return tuple(n for n in names if n in FIELDS) or FIELDS

    def _throttle(self) -> float:
        try:
            return parse_duration(self.data.get("throttle", 0))
        except ValueError as exc:
            self.problem("throttle", f"throttle: {exc}")
            return 0.0

    def _examples(self, key: str) -> tuple[Example, ...]:
        tests = self.data.get("tests", {})
        if not isinstance(tests, dict):
            if key == "match":  # once for the file, not once per list
                self.problem("tests", "'tests' must be a mapping with match: and no_match: lists")
            return ()
        if key == "match":
            for unknown in set(tests) - {"match", "no_match"}:
                hint = did_you_mean(unknown, ("match", "no_match"))
                self.source.problem(
                    tests.key_lines[unknown], f"unknown key '{unknown}' in tests{hint}"
                )
        values = tests.get(key, [])
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            self.source.problem(
                line_of(tests, self.line("tests")), f"tests.{key} must be a list of texts"
            )
            return ()
        lines = values.item_lines if isinstance(values, LocatedList) else [1] * len(values)
        return tuple(Example(v, n) for v, n in zip(values, lines, strict=True))

    def _expr(self, node: Any, line: int, depth: int, top: bool = False) -> Expr | None:
        if depth > MAX_DEPTH:
            self.source.problem(line, f"match is nested more than {MAX_DEPTH} levels deep")
            return None
        if not isinstance(node, dict):
            self.source.problem(line, "match must be a mapping with all:, any: and/or none:")
            return None
        parts: dict[str, tuple] = {}
        for key, value in node.items():
            key_line = node.key_lines.get(key, line) if isinstance(node, LocatedDict) else line
            if key not in ("all", "any", "none"):
                hint = did_you_mean(key, ("all", "any", "none"))
                self.source.problem(key_line, f"unknown key '{key}' in match{hint}")
                continue
            parts[key] = self._items(value, key_line, depth)
        if not parts.get("all") and not parts.get("any"):
            if not any(node.get(k) for k in ("all", "any")):  # else its terms were reported
                self.source.problem(line, "match needs at least one term under all: or any:")
            return None
        return Expr(**parts)

    def _items(self, value: Any, line: int, depth: int) -> tuple[Expr | Leaf, ...]:
        values = value if isinstance(value, list) else [value]
        lines = value.item_lines if isinstance(value, LocatedList) else [line] * len(values)
        items = []
        for item, item_line in zip(values, lines, strict=True):
            leaf = self._leaf(item, item_line, depth)
            items += [leaf] if leaf is not None else []
        return tuple(items)

    def _leaf(self, item: Any, line: int, depth: int) -> Expr | Leaf | None:
        if isinstance(item, dict):
            return self._expr(item, line_of(item, line), depth + 1)
        if isinstance(item, str) and item.startswith("@"):
            name = item[1:]
            if name not in self.groups:
                hint = did_you_mean(name, list(self.groups))
                self.source.problem(
                    line,
                    f"undefined group '@{name}'{hint}: define it under terms: or in rules/terms/",
                )
                return None
            if not self.groups[name] and name not in self.local_names:
                # a shared list is only a problem where a rule relies on it
                self.source.problem(
                    line, f"group '{name}' is empty: add terms to it or remove '@{name}'"
                )
            return Leaf(item, self.groups[name]) if self.groups[name] else None
        terms = _term(item, self.source, line)
        return Leaf(terms[0].text, terms) if terms else None


def _duplicate_ids(rules: list[Rule]) -> list[Problem]:
    first: dict[str, Rule] = {}
    problems = []
    for rule in rules:
        if rule.id in first:
            other = first[rule.id]
            problems.append(
                Problem(
                    rule.path, rule.line, f"duplicate rule id '{rule.id}' (also in {other.path})"
                )
            )
            problems.append(
                Problem(
                    other.path, other.line, f"duplicate rule id '{rule.id}' (also in {rule.path})"
                )
            )
        else:
            first[rule.id] = rule
    return problems


def load_rules(path: Path | str) -> Rulebook:
    """Every rule under `path` (a folder or one file), compiled; RuleError lists every problem."""
    rules, problems = read_rule_set(Path(path))
    if problems:
        raise RuleError(problems)
    return Rulebook(rules)
