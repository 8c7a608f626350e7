"""Rule validation: one test per problem, with its line and message; nothing is half-loaded."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bot.errors import RuleError
from bot.rules.files import load_rules, read_rule_set
from bot.rules.language import parse_term

ROOT = Path(__file__).resolve().parents[2]


def write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(folder: Path) -> list[tuple[str, int, str]]:
    """(file name, line, message) of every problem in the rule folder."""
    _rules, found = read_rule_set(folder)
    assert found, "expected problems"
    assert all(p.path.startswith(str(folder)) for p in found)
    return [(Path(p.path).relative_to(folder).as_posix(), p.line, p.message) for p in found]


def only_problem(folder: Path, text: str | bytes, name: str = "r.yaml") -> tuple[int, str]:
    write(folder, name, text)
    found = problems(folder)
    assert len(found) == 1, found
    file, line, message = found[0]
    assert file == name
    return line, message


def check(path: Path) -> subprocess.CompletedProcess[str]:
    """`alertbot rules check PATH` through the real entry point."""
    return subprocess.run(
        [sys.executable, "-m", "bot", "rules", "check", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


# --- through the command line ---------------------------------------------------------------


def test_check_yaml_syntax_error(tmp_path: Path) -> None:
    write(tmp_path, "r.yaml", "title: x\nmatch: {all: [Odesa\n")
    result = check(tmp_path)
    assert result.returncode == 1
    assert f"{tmp_path / 'r.yaml'}:2: YAML syntax error" in result.stderr  # the open bracket's line
    assert "Traceback" not in result.stderr


def test_check_unknown_key_with_did_you_mean(tmp_path: Path) -> None:
    write(tmp_path, "r.yaml", "title: x\nmatch: {all: [Odesa]}\nwithn: 5\n")
    result = check(tmp_path)
    assert result.returncode == 1
    assert f"{tmp_path / 'r.yaml'}:3: unknown key 'withn' (did you mean 'within'?)" in result.stderr


def test_check_binary_file(tmp_path: Path) -> None:
    write(tmp_path, "r.yaml", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    result = check(tmp_path)
    assert result.returncode == 1
    assert f"{tmp_path / 'r.yaml'}:1: not a text file" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_reports_every_problem_at_once(tmp_path: Path) -> None:
    write(
        tmp_path,
        "r.yaml",
        """\
        title: Port strikes
        level: hihg
        match: {all: [Odesa]}
        throttle: soon
        colour: red
        """,
    )
    result = check(tmp_path)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith(str(tmp_path))]
    assert len(lines) == 3, result.stderr
    assert sorted(line.split(":")[1] for line in lines) == ["2", "4", "5"]
    assert "no rule was loaded" in result.stderr


def test_check_valid_rules_exit_zero(tmp_path: Path) -> None:
    write(tmp_path, "r.yaml", "title: x\nmatch: {all: [Odesa]}\n")
    result = check(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "1 rule(s) OK" in result.stdout


def test_check_missing_path(tmp_path: Path) -> None:
    result = check(tmp_path / "nope")
    assert result.returncode == 1
    assert "no such file or folder" in result.stderr
    assert "Traceback" not in result.stderr


# --- through read_rule_set ------------------------------------------------------------------


def test_empty_file(tmp_path: Path) -> None:
    assert only_problem(tmp_path, "") == (1, "the file is empty")


def test_file_of_only_comments_is_empty(tmp_path: Path) -> None:
    assert only_problem(tmp_path, "# nothing yet\n\n") == (1, "the file is empty")


@pytest.mark.parametrize("text", ["- Odesa\n- Izmail\n", "just a sentence\n", "42\n"])
def test_not_a_mapping(tmp_path: Path, text: str) -> None:
    line, message = only_problem(tmp_path, text)
    assert line == 1
    assert "a rule file must be a mapping" in message


def test_not_utf8(tmp_path: Path) -> None:
    latin1 = "title: Café\nmatch: {all: [Odesa]}\n".encode("latin-1")
    line, message = only_problem(tmp_path, latin1)
    assert line == 1
    assert "not a text file (binary, or not UTF-8)" in message


def test_yaml_syntax_error_bad_indentation(tmp_path: Path) -> None:
    line, message = only_problem(tmp_path, "title: x\nmatch:\n  all: [Odesa]\n bad: 1\n")
    assert line == 4
    assert message.startswith("YAML syntax error")


def test_title_not_text(tmp_path: Path) -> None:
    assert only_problem(tmp_path, "match: {all: [Odesa]}\ntitle: [a, b]\n") == (
        2,
        "'title' must be text",
    )


def test_description_not_text(tmp_path: Path) -> None:
    line, message = only_problem(tmp_path, "match: {all: [Odesa]}\n\ndescription: {a: 1}\n")
    assert (line, message) == (3, "'description' must be text")


def test_level_invalid_with_suggestion(tmp_path: Path) -> None:
    line, message = only_problem(tmp_path, "title: x\nlevel: hihg\nmatch: {all: [Odesa]}\n")
    assert line == 2
    assert "'level' must be one of low, medium, high, critical, not 'hihg'" in message
    assert "(did you mean 'high'?)" in message


@pytest.mark.parametrize("value", ["0", "-3", "true", "[5]", "sentencs"])
def test_within_invalid(tmp_path: Path, value: str) -> None:
    line, message = only_problem(tmp_path, f"match: {{all: [Odesa]}}\nwithin: {value}\n")
    assert line == 2
    assert "'within' must be item, paragraph, sentence, N sentences or a number of words" in message


@pytest.mark.parametrize("value", ["sentences", "1 sentences", "11 sentences", "x sentences"])
def test_within_sentences_invalid(tmp_path: Path, value: str) -> None:
    line, message = only_problem(tmp_path, f"match: {{all: [Odesa]}}\nwithin: {value}\n")
    assert line == 2
    assert "write 'N sentences' with N from 2 to 10" in message


@pytest.mark.parametrize("value", ["soon", "-5", "6 hours", "true"])
def test_throttle_invalid(tmp_path: Path, value: str) -> None:
    line, message = only_problem(tmp_path, f"match: {{all: [Odesa]}}\n\nthrottle: {value}\n")
    assert line == 3
    assert message.startswith("throttle: ")
    assert "30s, 10m, 6h or 1d" in message or "negative" in message


def test_feeds_not_a_list(tmp_path: Path) -> None:
    line, message = only_problem(tmp_path, "match: {all: [Odesa]}\nfeeds: {isw: true}\n")
    assert (line, message) == (2, "'feeds' must be a list of names")


def test_unknown_field(tmp_path: Path) -> None:
    line, message = only_problem(tmp_path, "match: {all: [Odesa]}\nfields: [body]\n")
    assert (line, message) == (2, "unknown field 'body': use title and/or content")


def test_invalid_id(tmp_path: Path) -> None:
    line, message = only_problem(tmp_path, "title: x\nid: Port_Strikes\nmatch: {all: [Odesa]}\n")
    assert line == 2
    assert "id 'Port_Strikes' must be lowercase letters, digits and dashes" in message


def test_unknown_key_inside_match_with_did_you_mean(tmp_path: Path) -> None:
    write(tmp_path, "r.yaml", "match:\n  all: [Odesa]\n  nome: [airport]\n")
    assert problems(tmp_path) == [
        ("r.yaml", 3, "unknown key 'nome' in match (did you mean 'none'?)"),
    ]


def test_unknown_key_inside_tests_with_did_you_mean(tmp_path: Path) -> None:
    text = "match: {all: [Odesa]}\ntests:\n  match: [Odesa]\n  no_mach: [Kyiv]\n"
    assert only_problem(tmp_path, text) == (
        4,
        "unknown key 'no_mach' in tests (did you mean 'no_match'?)",
    )


def test_tests_not_a_list_of_texts(tmp_path: Path) -> None:
    text = "match: {all: [Odesa]}\ntests:\n  match: Odesa is a port\n"
    line, message = only_problem(tmp_path, text)
    assert line == 3
    assert "tests.match must be a list of texts" in message


def test_tests_not_a_mapping_is_reported_once(tmp_path: Path) -> None:
    text = "match: {all: [Odesa]}\ntests: [Odesa is a port]\n"
    assert only_problem(tmp_path, text) == (
        2,
        "'tests' must be a mapping with match: and no_match: lists",
    )


def test_undefined_group_with_did_you_mean(tmp_path: Path) -> None:
    write(
        tmp_path,
        "r.yaml",
        """\
        terms:
          ports: [Odesa]
        match:
          all: ["@port", strike]
        """,
    )
    found = problems(tmp_path)
    assert (
        "r.yaml",
        4,
        "undefined group '@port' (did you mean 'ports'?): "
        "define it under terms: or in rules/terms/",
    ) in found


def test_undefined_group_suggests_a_shared_group(tmp_path: Path) -> None:
    write(tmp_path, "terms/places.yaml", "ukraine-ports: [Odesa]\n")
    write(tmp_path, "r.yaml", "match:\n  all: ['@ukraine-port', strike]\n")
    found = problems(tmp_path)
    assert any(
        line == 2 and "undefined group '@ukraine-port' (did you mean 'ukraine-ports'?)" in msg
        for _, line, msg in found
    ), found


def test_empty_group(tmp_path: Path) -> None:
    write(tmp_path, "r.yaml", "terms:\n  ports: []\nmatch:\n  all: ['@ports', strike]\n")
    found = problems(tmp_path)
    assert ("r.yaml", 2, "group 'ports' is empty: add terms or remove it") in found


def test_empty_shared_txt_group(tmp_path: Path) -> None:
    # Used in all:, an empty group must not silently drop out and leave the rule broader.
    write(tmp_path, "terms/ports.txt", "# nothing yet\n\n")
    write(tmp_path, "r.yaml", "match:\n  all: ['@ports', strike]\n")
    rules, found = read_rule_set(tmp_path)
    assert any("group 'ports' is empty" in p.message for p in found), (rules, found)


def test_empty_txt_group_named_in_the_rule(tmp_path: Path) -> None:
    write(tmp_path, "villages.txt", "# nothing yet\n")
    write(tmp_path, "r.yaml", "terms:\n  villages: villages.txt\nmatch:\n  all: ['@villages']\n")
    found = problems(tmp_path)
    assert ("r.yaml", 2, "group 'villages' is empty: add terms or remove it") in found


def test_missing_txt_group_file(tmp_path: Path) -> None:
    write(tmp_path, "r.yaml", "terms:\n  villages: villages.txt\nmatch:\n  all: ['@villages']\n")
    found = problems(tmp_path)
    assert any(
        line == 2 and "cannot read term list villages.txt" in msg for _, line, msg in found
    ), found


def test_duplicate_ids_across_two_files_reports_both(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "id: ports\nmatch: {all: [Odesa]}\n")
    write(tmp_path, "b.yaml", "id: ports\nmatch: {all: [Izmail]}\n")
    found = problems(tmp_path)
    assert len(found) == 2
    assert {(file, line) for file, line, _ in found} == {("a.yaml", 1), ("b.yaml", 1)}
    assert all("duplicate rule id 'ports'" in msg for _, _, msg in found)
    messages = {file: msg for file, _, msg in found}
    assert str(tmp_path / "b.yaml") in messages["a.yaml"]
    assert str(tmp_path / "a.yaml") in messages["b.yaml"]


def test_duplicate_id_from_the_file_name(tmp_path: Path) -> None:
    write(tmp_path, "ports.yaml", "match: {all: [Odesa]}\n")
    write(tmp_path, "other.yaml", "id: ports\nmatch: {all: [Izmail]}\n")
    found = problems(tmp_path)
    assert {file for file, _, _ in found} == {"ports.yaml", "other.yaml"}


def test_invalid_regex(tmp_path: Path) -> None:
    write(tmp_path, "r.yaml", "match:\n  all:\n    - Odesa\n    - '/(unclosed/'\n")
    found = problems(tmp_path)
    assert any(
        line == 4 and msg.startswith("invalid regular expression /(unclosed/")
        for _, line, msg in found
    ), found


def test_backreference_is_not_re2(tmp_path: Path) -> None:
    write(tmp_path, "r.yaml", "match:\n  all:\n    - Odesa\n    - '/(a)\\1/'\n")
    found = problems(tmp_path)
    assert any(line == 4 and "invalid regular expression" in msg for _, line, msg in found)


def test_wildcard_too_short(tmp_path: Path) -> None:
    write(tmp_path, "r.yaml", "match:\n  all:\n    - Odesa\n    - a*\n")
    assert problems(tmp_path) == [
        (
            "r.yaml",
            4,
            "'a*': a wildcard needs at least 3 letters before '*' (shorter ones match too much)",
        )
    ]


def test_star_in_the_middle(tmp_path: Path) -> None:
    write(tmp_path, "r.yaml", "match:\n  all:\n    - Odesa\n    - 'dri*ll'\n")
    found = problems(tmp_path)
    assert ("r.yaml", 4, "'dri*ll': '*' may only end a term") in found


def test_term_with_no_letters(tmp_path: Path) -> None:
    write(tmp_path, "r.yaml", "match:\n  all:\n    - Odesa\n    - '--'\n")
    found = problems(tmp_path)
    assert ("r.yaml", 4, "'--' has no letters or digits") in found


def test_term_not_text(tmp_path: Path) -> None:
    write(tmp_path, "r.yaml", "match:\n  all:\n    - Odesa\n    - [nested, list]\n")
    found = problems(tmp_path)
    assert any(line == 4 and "a term must be text" in msg for _, line, msg in found), found


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    text = "title: a\nmatch: {all: [Odesa]}\ntitle: b\n"
    assert only_problem(tmp_path, text) == (3, "duplicate key 'title' (first on line 1)")


def test_missing_match(tmp_path: Path) -> None:
    assert only_problem(tmp_path, "title: a\nlevel: high\n") == (
        1,
        "missing 'match:' (all/any/none of terms)",
    )


def test_match_with_only_none(tmp_path: Path) -> None:
    line, message = only_problem(tmp_path, "title: a\nmatch:\n  none: [airport]\n")
    assert line == 2
    assert "match needs at least one term under all: or any:" in message


@pytest.mark.parametrize(
    ("group_file", "content", "group", "line", "message"),
    [
        ("terms/attacks.yaml", "attack:\n  - struck\n  - '/(bad/'\n", "attack", 3,
         "invalid regular expression"),
        ("terms/ports.txt", "# ports\nOdesa\n\nab*\n", "ports", 4,
         "a wildcard needs at least 3"),
    ],
    ids=["yaml-group", "txt-group"],
)  # fmt: skip
def test_problem_in_a_shared_group_points_at_its_file_and_line(
    tmp_path: Path, group_file: str, content: str, group: str, line: int, message: str
) -> None:
    write(tmp_path, group_file, content)
    write(tmp_path, "r.yaml", f"match: {{all: ['@{group}']}}\n")
    found = problems(tmp_path)
    assert (group_file, line) in [(f, n) for f, n, m in found if message in m], found


def test_txt_group_not_utf8(tmp_path: Path) -> None:
    write(tmp_path, "terms/ports.txt", "Odesa\nMariupol\u00eb\n".encode("latin-1", "replace"))
    write(tmp_path, "terms/more.txt", b"Odesa\n\xff\xfe\n")
    write(tmp_path, "r.yaml", "match: {all: ['@more']}\n")
    found = problems(tmp_path)
    assert any("term list more.txt is not UTF-8 text" in msg for _, _, msg in found), found


def test_three_problems_give_three_lines(tmp_path: Path) -> None:
    write(
        tmp_path,
        "r.yaml",
        """\
        title: [not, text]
        match: {all: [Odesa]}
        within: nearby
        feeds: 7
        """,
    )
    found = problems(tmp_path)
    assert [(line, msg.split(" ")[0]) for _, line, msg in found] == [
        (1, "'title'"),
        (3, "'within'"),
        (4, "'feeds'"),
    ]


def test_a_bad_term_is_reported_once_not_also_as_an_empty_match(tmp_path: Path) -> None:
    # The rule has a term under all:; saying "match needs at least one term" as well sends the
    # editor looking for a problem that is not there.
    write(tmp_path, "r.yaml", "title: x\nmatch:\n  all: ['/(unclosed/']\n")
    assert [line for _, line, _ in problems(tmp_path)] == [3]


def test_problems_in_several_files_are_all_reported(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "match: {all: [Odesa]}\nlevel: urgent\n")
    write(tmp_path, "b.yaml", "")
    write(tmp_path, "c.yaml", "match: {all: [Izmail]}\n")  # valid
    found = problems(tmp_path)
    assert {(file, line) for file, line, _ in found} == {("a.yaml", 2), ("b.yaml", 1)}


def test_load_rules_raises_with_every_problem_and_loads_nothing(tmp_path: Path) -> None:
    write(tmp_path, "a-good.yaml", "match: {all: [Odesa]}\n")
    write(tmp_path, "b-bad.yaml", "match: {all: [Izmail]}\nlevel: urgent\nwithin: soon\n")
    with pytest.raises(RuleError) as caught:
        load_rules(tmp_path)
    assert [(Path(p.path).name, p.line) for p in caught.value.problems] == [
        ("b-bad.yaml", 2),
        ("b-bad.yaml", 3),
    ]
    text = str(caught.value)
    assert f"{tmp_path / 'b-bad.yaml'}:2: 'level' must be one of" in text
    assert f"{tmp_path / 'b-bad.yaml'}:3: 'within' must be" in text


def test_load_rules_on_an_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="no rule files"):
        load_rules(tmp_path)


def test_load_rules_on_one_file(tmp_path: Path) -> None:
    path = write(tmp_path, "ports.yaml", "match: {all: [Odesa]}\n")
    book = load_rules(path)
    assert [r.id for r in book.rules] == ["ports"]


def test_valid_rule_values_are_read(tmp_path: Path) -> None:
    write(
        tmp_path,
        "taiwan.yaml",
        """\
        title: "  PRC   drills  "
        description: Drills around Taiwan
        level: critical
        feeds: isw
        fields: [title]
        within: 12
        throttle: 6h
        match: {all: [Taiwan]}
        tests:
          match: [Taiwan drills]
          no_match: [Nothing]
        """,
    )
    [rule] = load_rules(tmp_path).rules
    assert (rule.id, rule.title, rule.level, rule.feeds, rule.fields) == (
        "taiwan",
        "PRC drills",
        "critical",
        ("isw",),
        ("title",),
    )
    assert (rule.within, rule.throttle) == (12, 6 * 3600.0)
    assert [(e.text, e.line) for e in rule.should_match] == [("Taiwan drills", 10)]
    assert [(e.text, e.line) for e in rule.should_not_match] == [("Nothing", 11)]


@pytest.mark.parametrize(
    ("raw", "kind", "key"),
    [
        ("Kursk", "word", " kursk "),
        ("Taiwan  Strait", "word", " taiwan strait "),
        ("live-fire", "word", " live fire "),
        ("drill*", "prefix", " drill"),
        ("Курск*", "prefix", " курск"),
        ("/Joint Sword/", "regex", "Joint Sword"),
        (1943, "word", " 1943 "),
    ],
)
def test_parse_term(raw: object, kind: str, key: str) -> None:
    term = parse_term(raw)
    assert (term.kind, term.key) == (kind, key)


def test_parse_term_case_sensitive() -> None:
    term = parse_term("=PLA")
    assert term.case_sensitive
    assert term.key == " pla "
    assert term.cased_key.strip() == "PLA"
    assert not parse_term("PLA").case_sensitive


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("ab*", "at least 3 letters"),
        ("Joint So*", "at least 3 letters"),
        ("a*b", "'*' may only end a term"),
        ("***", "'*' may only end a term"),
        ("…", "has no letters or digits"),
        ("=", "has no letters or digits"),
        ("/[a-/", "invalid regular expression"),
        (None, "a term must be text"),
        (True, "a term must be text"),
    ],
)
def test_parse_term_errors(raw: object, fragment: str) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        parse_term(raw)
