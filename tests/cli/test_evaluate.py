"""`alertbot rules eval` through the real entry point, on cases written here."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from runbot import alertbot as run_alertbot
from runbot import rules_dir

ROOT = Path(__file__).resolve().parents[2]

TAIWAN = """\
    id: taiwan
    terms:
      taiwan: [Taiwan, Тайвань]
      drills: [drill*, exercise*, live-fire]
    match:
      all: ["@taiwan", "@drills"]
    """

KURSK = """\
    id: kursk
    terms:
      kursk: [Kursk, Курск*]
      war: [troops, forces, fighting, "~бой"]
    match:
      all: ["@kursk", "@war"]
      none: [submarine]
    """


def alertbot(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return run_alertbot(*map(str, args), cwd=ROOT, timeout=120)


def assert_clean_failure(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


CASES = [
    # fires as expected
    {"id": "tw-hit", "text": "The PLA began live-fire drills around Taiwan.",
     "expect": ["taiwan"], "not": [], "lang": "en"},
    # a miss: Taiwan and the drill are in different sentences
    {"id": "tw-miss", "text": "Taiwan is on alert. Drills began at dawn.",
     "expect": ["taiwan"], "not": ["kursk"], "lang": "en"},
    # a Cyrillic case that fires
    {"id": "ru-hit", "text": "В Курской области идут бои.",
     "expect": ["kursk"], "not": ["taiwan"], "lang": "ru"},
    # a false alarm
    {"id": "k-false", "text": "Kursk city forces its budget through.",
     "expect": [], "not": ["kursk"], "lang": "en", "source": "written here"},
]  # fmt: skip


def cases_file(tmp_path: Path, cases: list[dict] = CASES) -> Path:
    path = tmp_path / "cases.jsonl"
    path.write_text("\n".join(json.dumps(c, ensure_ascii=False) for c in cases) + "\n")
    return path


def test_eval_prints_figures_misses_and_false_alarms(tmp_path: Path) -> None:
    folder = rules_dir(tmp_path, taiwan=TAIWAN, kursk=KURSK)
    result = alertbot("rules", "eval", cases_file(tmp_path), "--rules", folder)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    taiwan = next(line for line in lines if line.startswith("taiwan "))
    assert taiwan.split() == ["taiwan", "2", "1", "0.50", "1", "1", "1.00"]
    kursk = next(line for line in lines if line.startswith("kursk "))
    assert kursk.split() == ["kursk", "1", "1", "1.00", "2", "1", "0.50"]
    assert (
        "overall (4 cases): recall 0.67 (2/3)  quiet-rate 0.67 (2/3)  Cyrillic recall 1.00 (1/1)"
        in result.stdout
    )
    why = 'had @taiwan in one sentence but no @drills; closest: "Taiwan is on alert."'
    assert f"  tw-miss taiwan: {why}" in lines
    assert any(
        line.startswith("  k-false kursk: fired on terms Kursk, forces in") for line in lines
    )


def test_eval_json(tmp_path: Path) -> None:
    folder = rules_dir(tmp_path, taiwan=TAIWAN, kursk=KURSK)
    result = alertbot("rules", "eval", cases_file(tmp_path), "--rules", folder, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["rules"]["taiwan"] == {
        "expected": 2, "fired": 1, "recall": 0.5, "not": 1, "quiet": 1, "quiet_rate": 1.0,
    }  # fmt: skip
    assert report["overall"]["cyrillic_recall"] == 1.0
    assert [m["case"] for m in report["misses"]] == ["tw-miss"]
    assert [(f["case"], f["rule"]) for f in report["false_alarms"]] == [("k-false", "kursk")]
    assert "no @drills" in report["misses"][0]["why"]


def test_eval_explains_a_veto(tmp_path: Path) -> None:
    folder = rules_dir(tmp_path, kursk=KURSK)
    cases = [{"id": "sub", "text": "The submarine Kursk lost its troops.", "expect": ["kursk"]}]
    result = alertbot("rules", "eval", cases_file(tmp_path, cases), "--rules", folder)
    assert "had what it needs but submarine vetoed it" in result.stdout


def test_eval_bad_case_lines_are_reported_with_their_line(tmp_path: Path) -> None:
    folder = rules_dir(tmp_path, taiwan=TAIWAN)
    path = tmp_path / "cases.jsonl"
    path.write_text('{"id": "a", "text": "x", "expect": []}\n\nnot json\n{"id": "b"}\n')
    result = alertbot("rules", "eval", path, "--rules", folder)
    assert_clean_failure(result, f"{path}:3: ")
    assert f"{path}:4: a case needs 'text' (text)" in result.stderr


def test_eval_warns_about_rules_it_does_not_know(tmp_path: Path) -> None:
    folder = rules_dir(tmp_path, taiwan=TAIWAN)
    cases = [{"id": "x", "text": "Nothing here.", "expect": ["no-such-rule"]}]
    result = alertbot("rules", "eval", cases_file(tmp_path, cases), "--rules", folder)
    assert result.returncode == 0
    assert "cases name rule 'no-such-rule', which is not loaded" in result.stderr


def test_eval_on_missing_cases_file(tmp_path: Path) -> None:
    result = alertbot("rules", "eval", tmp_path / "none.jsonl", "--rules", tmp_path)
    assert_clean_failure(result, "cannot read the cases")
