"""Invisible characters (zero-width, soft hyphen, BOM, bidi controls) never defeat matching."""

from __future__ import annotations

import json
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from bot.models import Item
from bot.rules.evaluate import Case, evaluate
from bot.rules.files import load_rules
from bot.rules.text import canonical, strip_invisible

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
INVISIBLES = {
    "zero-width space": "\u200b",
    "zero-width non-joiner": "\u200c",
    "zero-width joiner": "\u200d",
    "word joiner": "\u2060",
    "soft hyphen": "\u00ad",
    "byte order mark": "\ufeff",
    "right-to-left override": "\u202e",
    "left-to-right mark": "\u200e",
    "right-to-left isolate": "\u2067",
    "tag space": "\U000e0020",
    "hangul filler": "\u3164",
}
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


@pytest.mark.parametrize("char", INVISIBLES.values(), ids=INVISIBLES.keys())
def test_an_invisible_character_inside_a_word_folds_away(char: str) -> None:
    assert canonical(f"Kur{char}sk forces") == " kursk forces "
    assert strip_invisible(f"Kur{char}sk") == "Kursk"


def test_every_format_character_this_python_knows_is_stripped() -> None:
    known = [chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf"]
    assert strip_invisible("".join(known)) == ""


def test_visible_text_is_left_alone() -> None:
    text = "Kýiv — «Курськ» 台湾 🇺🇦 e\u0301 ½"
    assert strip_invisible(text) == text


@pytest.mark.parametrize("char", INVISIBLES.values(), ids=INVISIBLES.keys())
def test_shipped_kursk_rule_matches_through_invisibles_and_snippets_show_none(char: str) -> None:
    rulebook = load_rules(RULES)
    text = f"Ukrainian troops advanced in Kur{char}sk Oblast.\u202e"
    item = Item("f", "u", "k", f"Kur{char}sk{BIDI}", "", None, text)
    [match] = rulebook.match(item)
    assert match.rule_id == "kursk"
    shown = " ".join(s.text for s in match.snippets)
    assert "Kursk" in shown
    assert not set(shown) & set("".join(INVISIBLES.values()) + BIDI)


def test_match_command_sees_through_invisibles() -> None:
    text = "Ukrainian for\u00adces advanced in K\u200bu\u200dr\u2060s\ufeffk Oblast.\u202e"
    result = subprocess.run(
        [sys.executable, "-m", "bot", "match", "--rules", str(RULES), "--json", "-"],
        cwd=ROOT,
        input=text.encode(),
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    [match] = json.loads(result.stdout)["matches"]
    assert match["rule"] == "kursk"
    assert match["snippets"] == ["Ukrainian **forces** **advanced** in **Kursk** Oblast."]


def test_evaluate_quotes_whole_sentences_after_invisibles(tmp_path: Path) -> None:
    (tmp_path / "kursk.yaml").write_text("match: {all: [Kursk, troops]}\n", encoding="utf-8")
    rulebook = load_rules(tmp_path)
    hidden = "\u200b" * 10  # window offsets are into the text without them
    text = f"{hidden}Ukrainian troops advanced in Kursk Oblast on Monday."
    fired = Case("fired", text, not_=("kursk",))
    missed = Case("missed", f"{hidden}Shelling hit Kursk Oblast on Monday.", expect=("kursk",))
    report = evaluate(rulebook, [fired, missed])
    why = {finding.case: finding.why for finding in report.findings}
    assert why["fired"].endswith(' in "Ukrainian troops advanced in Kursk Oblast on Monday."')
    assert why["missed"].endswith(' closest: "Shelling hit Kursk Oblast on Monday."')


def test_explain_and_trace_see_regex_terms_through_invisibles(tmp_path: Path) -> None:
    rule = 'match: {all: ["/joint sword/", drill*]}\n'
    (tmp_path / "r.yaml").write_text(rule, encoding="utf-8")
    rulebook = load_rules(tmp_path)
    item = Item("f", "u", "k", "", "", None, "\u200bJoint \u200bSword began. Drills follow.")
    assert rulebook.explain(item, "r") == ["/joint sword/", "drill*"]
    found, traced = rulebook.trace(item, "r")
    assert found == {"/joint sword/", "drill*"}
    text = rulebook.fields(item)["content"]
    assert [text[w.start : w.end] for w, _ in traced] == ["Joint Sword began.", "Drills follow."]
