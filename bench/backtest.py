"""Benchmark: `rules backtest` over a stored week against plain Rulebook.match on the same items.

    python bench/backtest.py [--items 150000] [--rules 1000] [--edited 50] [--baseline-items 20000]

Builds a database as the poller leaves it (the real schema and migrations): N items of about
3 KB over the last 7 days in 200 feeds, each with the `matches` rows the original rules gave it
(texts come from bench/match.py's generator: 3,000 distinct texts in rotation, each item its own
story). Then `--edited` rules get a different action group, and in the same run it measures:
- the backtest: bot.poll.replay.run_backtest, i.e. read-only reads in batches from SQLite,
  matching every item with the edited rule set and comparing per story with the stored matches;
- the baseline: Rulebook.match over the same items already in memory (no database), on a subset.
The untouched rules must come out unchanged (their stored matches came from the same rules):
the benchmark checks that. The last line is the summary the README quotes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from match import make_rules, make_texts, make_vocabulary

from bot.models import Item
from bot.poll.replay import run_backtest
from bot.rules.language import Expr, Leaf, Rule
from bot.rules.matcher import Rulebook
from bot.store import Store
from bot.store.schema import match_to_json

WEEK = 7 * 86400.0


def build_database(path: Path, texts: list[str], rulebook: Rulebook, count: int, now: float):
    """`count` items over the last week with the matches `rulebook` gives their texts."""
    found = [rulebook.match(Item("f", "u", "s", "", "", None, t)) for t in texts]
    with Store(path) as store:
        db = store.db
        db.execute("PRAGMA synchronous=OFF")
        with db.atomic():
            for start in range(0, count, 5000):
                items, matches = [], []
                for i in range(start, min(count, start + 5000)):
                    text, seen = texts[i % len(texts)], now - WEEK + WEEK * i / count
                    story, title = f"example.org/{i}", " ".join(texts[i % len(texts)].split()[:8])
                    items.append((i + 1, f"feed-{i % 200}", str(i), story, str(i), title,
                                  f"https://{story}", None, text, "[]", seen, seen))  # fmt: skip
                    matches += [(i + 1, m.rule_id, story, json.dumps(match_to_json(m)), seen)
                                for m in found[i % len(texts)]]  # fmt: skip
                db.conn.executemany(
                    "INSERT INTO items (id, feed, uid, story_key, content_hash, title, link, "
                    "published, text, rules, first_seen, last_changed) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    items,
                )
                db.conn.executemany(
                    "INSERT INTO matches (item_id, rule_id, story_key, snippets, matched_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    matches,
                )
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return sum(len(found[i % len(texts)]) for i in range(count))  # rows in `matches`


def edit(rules: list[Rule], count: int, rng: random.Random) -> tuple[list[Rule], set[str]]:
    """The rule set with `count` rules given another rule's action group (a real edit)."""
    chosen = set(rng.sample(range(len(rules)), count))
    edited = []
    for n, rule in enumerate(rules):
        if n in chosen:
            donor = rules[(n + 1) % len(rules)].match.all[2]
            assert isinstance(donor, Leaf)
            rule = replace(rule, match=Expr(all=(*rule.match.all[:2], donor)))
        edited.append(rule)
    return edited, {rules[n].id for n in chosen}


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=150_000)
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--edited", type=int, default=50)
    parser.add_argument("--distinct", type=int, default=3000)
    parser.add_argument("--baseline-items", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (the CLI's --jobs)")
    return parser.parse_args()


def cpu_seconds() -> float:
    """CPU time of this process and its finished worker processes."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def baseline(rulebook: Rulebook, texts: list[str], count: int) -> tuple[float, float]:
    """Items per second (wall clock, CPU) of plain Rulebook.match on the same items in memory."""
    items = [
        Item(f"feed-{i % 200}", str(i), f"example.org/{i}", "", "", None, texts[i % len(texts)])
        for i in range(count)
    ]
    started, cpu = time.perf_counter(), time.process_time()
    for item in items:
        rulebook.match(item)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return len(items) / wall, len(items) / cpu


def main() -> None:
    args = arguments()
    rng = random.Random(args.seed)
    vocab = make_vocabulary(rng, 6000)
    rules = make_rules(rng, args.rules, vocab)
    texts = make_texts(rng, args.distinct, vocab)
    now = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "alertbot.db"
        started = time.perf_counter()
        stored = build_database(path, texts, Rulebook(rules), args.items, now)
        build_s = time.perf_counter() - started
        db_mb = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 1e6
        edited, touched = edit(rules, args.edited, rng)
        started, cpu = time.perf_counter(), cpu_seconds()
        result = run_backtest(path, Rulebook(edited), now - WEEK - 60, jobs=args.jobs)
        backtest_s, backtest_cpu = time.perf_counter() - started, cpu_seconds() - cpu
    base_rate, base_cpu_rate = baseline(Rulebook(edited), texts, args.baseline_items)
    diffs = result.diffs()
    wrong = [d.rule_id for d in diffs if d.changed and d.rule_id not in touched]
    assert not wrong, f"untouched rules came out changed: {wrong[:5]}"
    assert result.items == args.items, (result.items, args.items)
    print(
        f"stored_matches={stored} build_s={build_s:.0f} db_mb={db_mb:.0f} "
        f"changed_rules={sum(d.changed for d in diffs)}/{args.edited} "
        f"added={sum(len(d.added) for d in diffs)} removed={sum(len(d.removed) for d in diffs)}"
    )
    print(
        f"items={result.items} rules={args.rules} jobs={args.jobs} backtest_s={backtest_s:.1f} "
        f"backtest_cpu_s={backtest_cpu:.1f} items_per_cpu_s={result.items / backtest_cpu:.0f} "
        f"baseline_items_per_cpu_s={base_cpu_rate:.0f} "
        f"items_per_s={result.items / backtest_s:.0f} baseline_items_per_s={base_rate:.0f} "
        f"load={os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
