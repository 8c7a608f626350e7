"""Benchmark: the Rulebook against a naive baseline (one regular expression per rule).

    python bench/match.py [--rules 1000] [--items 2000] [--baseline-items 200] [--seed 1]

Generates N realistic rules (three groups of 5 to 10 terms: places, actors, actions, with
wildcards and phrases) and report-like texts of about 3 KB, then measures in the same run.
Part of the rules use the newer constructs: a window of 3 sentences (20 %), an item-wide
condition (10 %: an item veto), and `~` inflected Russian words among the actions (10 %); a
tenth of the texts carry inflected Russian words. Measured in the same run:
- the engine: Rulebook.match over every item (sentence windows, snippets for what fires);
- the baseline: for each item, each plain rule's one compiled regex tried in turn (item-level;
  the rules with newer constructs have no regex equivalent, so both count plain rules only).
The baseline is slow, so it runs on a subset of the items; rates are per item either way.
The last line is the summary the README quotes.
"""

from __future__ import annotations

import argparse
import random
import re
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.models import Item
from bot.rules.language import Expr, Leaf, Rule, parse_term, parse_terms
from bot.rules.matcher import Rulebook

SYLLABLES = "ka ro vi an te mi sol dar ek ul ny za bor gre pol tan sk ev il or ast ren mak".split()
FILLER = (
    "the of and to in a on for that with by at from as said forces was were have has "
    "after near against while reported according sources officials local region area "
    "strike attack attacks military troops units positions advance defence ministry "
    "statement claimed footage shows damage city village district overnight morning "
    "killed wounded injured civilians infrastructure energy facility governor"
).split()


# Russian words for `~` terms, and the inflected forms the texts use
INFLECTED = ["учения", "удар", "порт", "танкер", "атака", "ракета", "корабль", "нефтебаза"]
TEXT_FORMS = [
    "учениях", "ударом", "порту", "танкера", "атаки", "ракетами", "кораблем", "нефтебазе",
    "учениям", "ударов", "портах", "танкеры", "атаку", "ракеты", "корабли", "нефтебазы",
]  # fmt: skip


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))


def make_vocabulary(rng: random.Random, size: int) -> list[str]:
    words = {_word(rng) for _ in range(size * 2)}
    return sorted(words)[:size]


def make_rules(rng: random.Random, count: int, vocab: list[str]) -> list[Rule]:
    places, actors, actions = vocab[:3000], vocab[3000:4000], vocab[4000:5000]
    rules = []
    for n in range(count):
        groups = [
            _group(rng, places, phrase_rate=0.3, wildcard_rate=0.1),
            _group(rng, actors, phrase_rate=0.2, wildcard_rate=0.1),
            _group(rng, actions, phrase_rate=0.1, wildcard_rate=0.5),
        ]
        kind = rng.random()
        if kind < 0.1:  # `~` inflected words among the actions
            words = rng.sample(INFLECTED, 2)
            groups[2] += tuple(t for w in words for t in parse_terms("~" + w))
        expr = Expr(all=tuple(Leaf(f"@g{i}", g) for i, g in enumerate(groups)))
        within, item = "item", None
        if 0.1 <= kind < 0.3:
            within = "3 sentences"
        elif 0.3 <= kind < 0.4:  # an item-wide veto
            item = Expr(none=(Leaf("@veto", _group(rng, places, 0.3, 0.0)[:2]),))
        rules.append(Rule(f"rule-{n}", f"Rule {n}", "", "high", expr, within=within, item=item))
    return rules


def is_plain(rule: Rule) -> bool:
    """A rule the regex baseline can express: item window, no item condition, no `~`."""
    return (
        rule.within == "item"
        and rule.item is None
        and not any(t.text.startswith("~") for leaf in rule.match.all for t in leaf.terms)
    )


def _group(rng: random.Random, pool: list[str], phrase_rate: float, wildcard_rate: float):
    terms = []
    for _ in range(rng.randint(5, 10)):
        text = rng.choice(pool)
        if rng.random() < phrase_rate:
            text += " " + rng.choice(pool)
        elif rng.random() < wildcard_rate:
            text = text[: max(4, len(text) - 2)] + "*"
        terms.append(parse_term(text.capitalize()))
    return tuple(terms)


def make_texts(rng: random.Random, count: int, vocab: list[str]) -> list[str]:
    topical = vocab[:5000]
    texts = []
    for _ in range(count):
        sentences, size = [], 0
        russian = rng.random() < 0.1  # a tenth of the items quote inflected Russian words
        while size < 3000:
            words = [
                rng.choice(topical).capitalize() if rng.random() < 0.08 else rng.choice(FILLER)
                for _ in range(rng.randint(12, 30))
            ]
            if russian and rng.random() < 0.3:
                words[rng.randrange(len(words))] = rng.choice(TEXT_FORMS)
            sentence = " ".join(words).capitalize() + "."
            sentences.append(sentence)
            size += len(sentence) + 1
        texts.append(" ".join(sentences))
    return texts


def baseline_regexes(rules: list[Rule]) -> list[re.Pattern[str]]:
    """One regex per rule: a lookahead per group, each an alternation of the group's terms."""
    patterns = []
    for rule in rules:
        lookaheads = []
        for leaf in rule.match.all:
            alternatives = "|".join(_term_regex(t.text) for t in leaf.terms)
            lookaheads.append(f"(?=.*?\\b(?:{alternatives}))")
        patterns.append(re.compile(r"\A" + "".join(lookaheads), re.IGNORECASE | re.DOTALL))
    return patterns


def _term_regex(text: str) -> str:
    wildcard = text.endswith("*")
    words = text.rstrip("*").split()
    body = r"[\W_]+".join(re.escape(w) for w in words)
    return body + (r"\w*" if wildcard else r"\b")


def measure_baseline(
    rulebook: Rulebook, rules: list[Rule], subset: list[Item]
) -> tuple[int, int, float]:
    """On `subset`: the engine's alerts of plain rules, the baseline's, and its items/s."""
    plain_ids = {rule.id for rule in rules if is_plain(rule)}
    patterns = baseline_regexes([rule for rule in rules if rule.id in plain_ids])
    started = time.perf_counter()
    baseline_fired = sum(1 for item in subset for p in patterns if p.search(item.text))
    baseline_rate = len(subset) / (time.perf_counter() - started)
    engine = sum(1 for item in subset for m in rulebook.match(item) if m.rule_id in plain_ids)
    return engine, baseline_fired, baseline_rate


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--baseline-items", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    vocab = make_vocabulary(rng, 6000)
    rules = make_rules(rng, args.rules, vocab)
    items = [
        Item("bench", str(i), str(i), "", "", None, text)
        for i, text in enumerate(make_texts(rng, args.items, vocab))
    ]

    started = time.perf_counter()
    rulebook = Rulebook(rules)
    compile_s = time.perf_counter() - started

    started = time.perf_counter()
    fired = [len(rulebook.match(item)) for item in items]
    engine_rate = len(items) / (time.perf_counter() - started)

    engine_on_subset, baseline_fired, baseline_rate = measure_baseline(
        rulebook, rules, items[: args.baseline_items]
    )
    print(
        f"terms={rulebook.term_count} engine_alerts={sum(fired)} "
        f"engine_alerts_on_subset={engine_on_subset} baseline_alerts_on_subset={baseline_fired}"
    )
    print(
        f"rules={args.rules} items={len(items)} engine_items_per_s={engine_rate:.0f} "
        f"baseline_items_per_s={baseline_rate:.1f} speedup={engine_rate / baseline_rate:.0f} "
        f"compile_s={compile_s:.2f} peak_rss_mb={peak_rss_mb():.0f}"
    )


if __name__ == "__main__":
    main()
