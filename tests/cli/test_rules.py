"""`alertbot rules test` and `alertbot match` through the real entry point (python -m bot)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from runbot import rules_dir

ROOT = Path(__file__).resolve().parents[2]

TAIWAN = """\
    id: taiwan
    title: PLA drills around Taiwan
    level: high
    terms:
      taiwan: [Taiwan, Тайвань]
      drills: [drill*, exercise*, live-fire, учени*]
    match:
      all: ["@taiwan", "@drills"]
      none: ["stock option*"]
    tests:
      match:
        - "The PLA began live-fire drills around Taiwan."
      no_match:
        - "Taiwan Semiconductor staff may exercise stock options."
    """

KURSK = """\
    id: kursk
    title: Fighting in Kursk Oblast
    level: critical
    terms:
      kursk: [Kursk, Курск*]
      war: [troops, forces, fighting, войск*]
    match:
      all: ["@kursk", "@war"]
      none: [submarine]
    """


def alertbot(
    *args: str | Path, stdin: bytes | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "bot", *map(str, args)],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        timeout=timeout,
    )
    return subprocess.CompletedProcess(
        result.args,
        result.returncode,
        result.stdout.decode("utf-8", "replace"),
        result.stderr.decode("utf-8", "replace"),
    )


def assert_clean_failure(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


# --- rules test -----------------------------------------------------------------------------


def test_rules_test_passes(tmp_path: Path) -> None:
    result = alertbot("rules", "test", rules_dir(tmp_path, taiwan=TAIWAN))
    assert result.returncode == 0, result.stderr
    assert "2 passed, 0 failed" in result.stdout


def test_rules_test_names_rule_example_and_terms_found(tmp_path: Path) -> None:
    failing = TAIWAN.replace(
        '        - "The PLA began live-fire drills around Taiwan."\n',
        '        - "The PLA began live-fire drills around Taiwan."\n'
        '        - "Taiwan raised its alert level on Monday."\n',
    )
    folder = rules_dir(tmp_path, taiwan=failing)
    result = alertbot("rules", "test", folder)
    assert result.returncode == 1
    assert "2 passed, 1 failed" in result.stdout
    [line] = [x for x in result.stderr.splitlines() if "should match" in x]
    assert line.startswith(f"{folder / 'taiwan.yaml'}:13: taiwan: should match but did not")
    assert "Taiwan raised its alert level on Monday." in line
    assert "terms found: Taiwan" in line


def test_rules_test_no_match_failure_names_the_terms_that_matched(tmp_path: Path) -> None:
    failing = TAIWAN.replace(
        '        - "Taiwan Semiconductor staff may exercise stock options."\n',
        '        - "Taiwan Semiconductor staff may exercise stock options."\n'
        '        - "Taiwan staff exercise in the gym."\n',
    )
    folder = rules_dir(tmp_path, taiwan=failing)
    result = alertbot("rules", "test", folder)
    assert result.returncode == 1
    [line] = [x for x in result.stderr.splitlines() if "should not match" in x]
    assert line.startswith(f"{folder / 'taiwan.yaml'}:15: taiwan: should not match but did")
    assert "Taiwan" in line and "exercise*" in line
    assert "Taiwan staff exercise in the gym." in line


def test_rules_test_on_invalid_rules(tmp_path: Path) -> None:
    folder = rules_dir(tmp_path, bad="match: {all: [a*]}\n")
    result = alertbot("rules", "test", folder)
    assert_clean_failure(result, "a wildcard needs at least 3 letters")


# --- match ----------------------------------------------------------------------------------


def test_match_text_output(tmp_path: Path) -> None:
    folder = rules_dir(tmp_path, taiwan=TAIWAN, kursk=KURSK)
    text = tmp_path / "report.txt"
    text.write_text("Quiet day. The PLA began live-fire drills around Taiwan.\n", encoding="utf-8")
    result = alertbot("match", "--rules", folder, text)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("[high] taiwan: PLA drills around Taiwan")
    assert "live-fire" in lines[0] and "drill*" in lines[0]
    assert "The PLA began **live-fire** **drills** around **Taiwan**." in lines[1]
    assert "kursk" not in result.stdout


def test_match_nothing(tmp_path: Path) -> None:
    folder = rules_dir(tmp_path, taiwan=TAIWAN)
    result = alertbot("match", "--rules", folder, "-", stdin=b"Nothing to see.")
    assert result.returncode == 0
    assert result.stdout.strip() == "no rule matched"


def test_match_json_shape(tmp_path: Path) -> None:
    folder = rules_dir(tmp_path, taiwan=TAIWAN, kursk=KURSK)
    text = tmp_path / "report.txt"
    text.write_text(
        "Ukrainian forces advanced in Kursk Oblast. The PLA began drills around Taiwan.",
        encoding="utf-8",
    )
    result = alertbot("match", "--rules", folder, "--json", text)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert list(payload) == ["matches"]
    assert [m["rule"] for m in payload["matches"]] == ["kursk", "taiwan"]
    for m in payload["matches"]:
        assert set(m) == {"rule", "title", "level", "snippets"}
        assert all(isinstance(s, str) for s in m["snippets"])
    kursk = payload["matches"][0]
    assert kursk["title"] == "Fighting in Kursk Oblast"
    assert kursk["level"] == "critical"
    assert kursk["snippets"] == ["Ukrainian **forces** advanced in **Kursk** Oblast."]


def test_match_json_no_matches(tmp_path: Path) -> None:
    folder = rules_dir(tmp_path, taiwan=TAIWAN)
    result = alertbot("match", "--rules", folder, "--json", "-", stdin=b"Nothing here.")
    assert result.returncode == 0
    assert json.loads(result.stdout) == {"matches": []}


def test_match_stdin(tmp_path: Path) -> None:
    folder = rules_dir(tmp_path, taiwan=TAIWAN)
    stdin = "Китай начал учения вокруг Тайваня? No: the PLA drills near Taiwan.".encode()
    result = alertbot("match", "--rules", folder, "--json", "-", stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert [m["rule"] for m in json.loads(result.stdout)["matches"]] == ["taiwan"]


def test_match_mixed_scripts(tmp_path: Path) -> None:
    folder = rules_dir(tmp_path, taiwan=TAIWAN, kursk=KURSK)
    text = (
        "中国人民解放军在台湾周边举行演习。\n\n"
        "Российские войска ведут бои в Курской области. "
        "العربية نص. עברית. ελληνικά. 🇺🇦🔥 Kýiv.\n\n"
        "Тайвань: PLA учения продолжаются."
    )
    result = alertbot("match", "--rules", folder, "--json", "-", stdin=text.encode())
    assert result.returncode == 0, result.stderr
    matches = {m["rule"]: m for m in json.loads(result.stdout)["matches"]}
    assert set(matches) == {"kursk", "taiwan"}
    assert matches["kursk"]["snippets"] == [
        "Российские **войска** ведут бои в **Курской** области."
    ]
    assert matches["taiwan"]["snippets"] == ["**Тайвань**: PLA **учения** продолжаются."]


def test_match_binary_file(tmp_path: Path) -> None:
    folder = rules_dir(tmp_path, taiwan=TAIWAN)
    binary = tmp_path / "image.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 10)
    result = alertbot("match", "--rules", folder, binary)
    assert_clean_failure(result, "is not UTF-8 text")
    assert str(binary) in result.stderr


def test_match_binary_stdin(tmp_path: Path) -> None:
    folder = rules_dir(tmp_path, taiwan=TAIWAN)
    result = alertbot("match", "--rules", folder, "-", stdin=b"\x00\xff\xfe binary")
    assert_clean_failure(result, "standard input is not UTF-8 text")


def test_match_missing_file(tmp_path: Path) -> None:
    folder = rules_dir(tmp_path, taiwan=TAIWAN)
    missing = tmp_path / "nope.txt"
    result = alertbot("match", "--rules", folder, missing)
    assert_clean_failure(result, f"cannot read {missing}")
    assert "No such file" in result.stderr


def test_match_a_folder_instead_of_a_file(tmp_path: Path) -> None:
    folder = rules_dir(tmp_path, taiwan=TAIWAN)
    result = alertbot("match", "--rules", folder, tmp_path)
    assert_clean_failure(result, f"cannot read {tmp_path}")


def test_match_with_invalid_rules(tmp_path: Path) -> None:
    folder = rules_dir(tmp_path, taiwan=TAIWAN, bad="title: x\n")
    result = alertbot("match", "--rules", folder, "-", stdin=b"Taiwan drills")
    assert_clean_failure(result, "missing 'match:'")


def test_match_missing_rules_folder(tmp_path: Path) -> None:
    result = alertbot("match", "--rules", tmp_path / "none", "-", stdin=b"Taiwan drills")
    assert_clean_failure(result, "no such file or folder")


def _ten_megabytes(unit: str) -> bytes:
    data = unit.encode("utf-8")
    return data * (10_000_000 // len(data) + 1)


def test_match_ten_megabyte_text(tmp_path: Path) -> None:
    folder = rules_dir(tmp_path, taiwan=TAIWAN, kursk=KURSK)
    unit = (
        "Officials reported calm seas and routine traffic in the region on Monday. "
        "Ukrainian forces held positions near Kursk. Курская область.\n\n"
        "Markets in Taipei were steady. The PLA began drills around Taiwan again.\n"
    )
    big = tmp_path / "big.txt"
    big.write_bytes(_ten_megabytes(unit))
    result = alertbot("match", "--rules", folder, "--json", big)
    assert result.returncode == 0, result.stderr[-2000:]
    matches = json.loads(result.stdout)["matches"]
    assert [m["rule"] for m in matches] == ["kursk", "taiwan"]
    # the text repeats the same sentences: each is quoted once, never the same sentence twice
    assert all(len(m["snippets"]) == 1 for m in matches)


# A linear engine handles these in about a second; work that grows with the square of the text
# takes hours, so the generous timeout only guards the suite against a hang.
HANG_GUARD = 30


@pytest.mark.parametrize(
    ("rule", "unit"),
    [
        # a regex term that occurs often
        ('match: {all: ["/\\\\d+ drones?/"]}\n', "Russia launched 40 drones at Odesa. "),
        # a word window with terms that occur often
        ("match: {all: [drones, Odesa]}\nwithin: 6\n", "Russia launched 40 drones at Odesa. "),
    ],
    ids=["regex", "word-window"],
)
def test_match_large_text_with_many_hits_completes(tmp_path: Path, rule: str, unit: str) -> None:
    folder = rules_dir(tmp_path, many=rule)
    big = tmp_path / "big.txt"
    big.write_bytes(unit.encode() * (2_000_000 // len(unit)))
    try:
        result = alertbot("match", "--rules", folder, "--json", big, timeout=HANG_GUARD)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`alertbot match` on 2 MB did not finish within {HANG_GUARD} s")
    assert result.returncode == 0, result.stderr[-2000:]
    assert [m["rule"] for m in json.loads(result.stdout)["matches"]] == ["many"]


def test_match_over_the_size_cap_is_refused_cleanly(tmp_path: Path) -> None:
    folder = rules_dir(tmp_path, taiwan=TAIWAN)
    result = alertbot("match", "--rules", folder, "-", stdin=b"a" * 50_000_001)
    assert_clean_failure(result, "standard input is over 50 MB")
