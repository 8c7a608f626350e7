"""The shipped rule pack: valid, its embedded examples pass, and it reads the real report right."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
FIXTURE = ROOT / "tests" / "fixtures" / "isw-2024-10-14.txt"

SHIPPED = ("taiwan-exercises", "port-strikes", "kursk")
EXTRA = (
    "port-labour-strikes",
    "black-sea-fleet",
    "zaporizhzhia-npp",
    "drone-strikes-refineries",
    "north-korean-troops",
    "kerch-bridge",
)

# The sentence of the fixture each shipped rule must quote (key words, in order).
EXPECTED_SNIPPET = {
    "taiwan-exercises": (
        "Taiwan's Ministry of Defense warned that the PRC had begun",
        "massive military exercises",
        "surrounding Taiwan with warships on October 14",
    ),
    "port-strikes": (
        "Russian forces have struck civilian vessels docked at Ukrainian ports",
        "for the fourth time since October 5",
    ),
    "kursk": (
        "Russian sources claim that Russian forces have regained positions in the Kursk region",
    ),
}

# Realistic texts on neighbouring subjects that no shipped rule may fire on.
NEGATIVES = [
    "On August 12, 2000, the nuclear-powered submarine Kursk sank in the Barents Sea after a "
    "torpedo exploded; rescue forces from Norway reached the hull only nine days later.",
    "Russia marked the 80th anniversary of the Battle of Kursk with a parade in Prokhorovka; "
    "veterans recalled how Soviet troops held the line in July 1943.",
    "Taiwan Semiconductor Manufacturing Co. said staff in China may exercise stock options in "
    "March, after its Taipei-listed shares rose 4%.",
    "Dockworkers from Maine to Texas walked off the job at midnight, the first East Coast port "
    "strike since 1977; the International Longshoremen's Association went on strike over wages.",
    "Russian and Chinese warships held joint naval exercises in the Sea of Japan; the PLA Navy "
    "said anti-submarine drills went as planned.",
    "Britain's prime minister said support for Ukraine remained firm, the report noted, as "
    "passport checks at Dover and at Gatwick airport caused long queues.",
    "Курская битва 1943 года стала переломной: советские войска перешли в наступление под Курском.",
    "Докери порту Одеса оголосили страйк через затримку зарплати, "
    "атаки роботодавця на профспілку тривають.",
    "Russian forces continued offensive operations near Pokrovsk and Toretsk on October 14 but "
    "did not make confirmed advances.",
]


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The real entry point, as a user runs it from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def match_json(*args: str, stdin: str | None = None) -> dict[str, dict]:
    result = run_cli("match", "--json", *args, stdin=stdin)
    assert result.returncode == 0, result.stderr
    return {m["rule"]: m for m in json.loads(result.stdout)["matches"]}


def plain(snippet: str) -> str:
    """A snippet without highlight marks, ellipses or doubled spaces."""
    text = snippet.replace("**", "").replace("…", " ")
    return re.sub(r"\s+", " ", text).strip()


def test_rules_check_passes() -> None:
    result = run_cli("rules", "check", "rules")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_every_embedded_example_passes() -> None:
    result = run_cli("rules", "test", "rules")
    assert result.returncode == 0, result.stderr
    assert " 0 failed" in result.stdout


@pytest.mark.parametrize("rule_id", SHIPPED + EXTRA)
def test_rule_file_carries_enough_fresh_examples(rule_id: str) -> None:
    data = yaml.safe_load((RULES / f"{rule_id}.yaml").read_text(encoding="utf-8"))
    assert data["id"] == rule_id
    minimum = 6 if rule_id in SHIPPED else 4
    tests = data["tests"]
    assert len(tests["match"]) >= minimum
    assert len(tests["no_match"]) >= minimum
    fixture = FIXTURE.read_text(encoding="utf-8")
    for example in tests["match"] + tests["no_match"]:
        assert example not in fixture, f"{rule_id}: example copied from the fixture: {example}"
    if rule_id in SHIPPED:
        cyrillic = [e for e in tests["match"] + tests["no_match"] if re.search("[а-яіїєА-ЯІЇЄ]", e)]
        assert cyrillic, f"{rule_id}: no Cyrillic example"


def test_fixture_fires_every_shipped_rule_quoting_the_right_sentence_in_text_order() -> None:
    matches = match_json(str(FIXTURE.relative_to(ROOT)))
    assert set(SHIPPED) <= set(matches)
    fixture = " ".join(FIXTURE.read_text(encoding="utf-8").split())
    for rule_id, key_phrases in EXPECTED_SNIPPET.items():
        quoted = [plain(s) for s in matches[rule_id]["snippets"]]
        assert any(all(p in q for p in key_phrases) for q in quoted), (rule_id, quoted)
        starts = [fixture.find(q.split(" ... ")[0][:60]) for q in quoted]
        assert starts == sorted(starts), (rule_id, quoted)


def test_taiwan_rule_ignores_the_russia_china_pacific_exercises() -> None:
    """The fixture's joint naval exercises with the PLA have no Taiwan in them."""
    snippets = [plain(s) for s in match_json(str(FIXTURE))["taiwan-exercises"]["snippets"]]
    assert all("Taiwan" in s for s in snippets), snippets
    assert not any("northwest Pacific" in s for s in snippets)


@pytest.mark.parametrize("text", NEGATIVES, ids=lambda t: t[:40])
def test_neighbouring_subjects_fire_nothing(text: str) -> None:
    fired = set(match_json("-", stdin=text))
    # a dockworkers' strike is port-labour-strikes' topic, and nothing else's
    assert fired <= ({"port-labour-strikes"} if LABOUR.search(text) else set())


LABOUR = re.compile(r"Dockworkers|Докери")


def test_port_labour_strikes_has_the_labour_disputes_port_strikes_leaves_out() -> None:
    labour = [t for t in NEGATIVES if LABOUR.search(t)]
    assert labour
    for text in labour:
        assert set(match_json("-", stdin=text)) == {"port-labour-strikes"}
