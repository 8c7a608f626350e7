"""Benchmark: how alerts read, on every embedded example of the shipped rules.

    python bench/alerts.py [--rules rules] [--lead]

Each example becomes a report (headline "Overnight report", or with --lead its own first
sentence, as feeds often repeat the headline as the lead), is matched by the whole rulebook
and rendered as the subscriber sees it. Measured in the same run, the baseline: the share
of the same message that bolding every matched term would take. The last line is the
summary the README quotes:

    alerts=N bold_median=B bold_max=M baseline_bold_median=X headline_line=1 snippets_max=3
    headline_repeats=0 duplicate_sentences=0 longest=C
"""

from __future__ import annotations

import argparse
import html
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from bot.models import Alert, Item  # noqa: E402
from bot.rules.emphasis import Emphasis  # noqa: E402
from bot.rules.files import load_rules  # noqa: E402
from bot.rules.text import sentence_spans  # noqa: E402
from bot.telegram.messages import (  # noqa: E402
    SNIPPET_CHARS,
    clean_spans,
    pick_snippets,
    render_alert,
    trim_snippet,
    visible_text,
)


def bold_share(text: str) -> float:
    bold = sum(len(html.unescape(b)) for b in re.findall(r"<b>(.*?)</b>", text))
    return bold / len(visible_text(text))


def every_term_share(alert: Alert, text: str) -> float:
    """The share of the rendered message that its snippets' matched terms cover."""
    snippets = [trim_snippet(s, SNIPPET_CHARS) for s in pick_snippets(alert)]
    covered = sum(e - s for snip in snippets for s, e in clean_spans(snip.highlights, 10**9))
    return covered / len(visible_text(text))


def alerts(rules_path: Path, lead: bool) -> tuple[list[Alert], Emphasis]:
    rulebook = load_rules(rules_path)
    out = []
    for rule in rulebook.rules:
        for n, example in enumerate(rule.should_match):
            start, end = sentence_spans(example.text)[0][:2]
            title = example.text[start:end] if lead else "Overnight report"
            item = Item("isw", f"{rule.id}-{n}", "k", title, "https://e.org/a", None, example.text)
            matches = tuple(rulebook.match(item))
            if matches:
                out.append(Alert(item, matches))
    return out, Emphasis(rulebook.rules)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rules", type=Path, default=ROOT / "rules")
    parser.add_argument("--lead", action="store_true", help="headline = the first sentence")
    args = parser.parse_args()
    found, decisive = alerts(args.rules, args.lead)
    shares, baseline, lines, quoted_counts, repeats, duplicates, longest = [], [], [], [], 0, 0, 0
    for alert in found:
        [text] = render_alert(alert, "ISW", "Europe/Kyiv", decisive)
        shares.append(bold_share(text))
        baseline.append(every_term_share(alert, text))
        rows = [visible_text(row) for row in text.split("\n")]
        lines.append(next(i for i, r in enumerate(rows) if alert.item.title[:30] in r) + 1)
        quoted = [r[2:] for r in rows if r.startswith("» ")]
        quoted_counts.append(len(quoted))
        repeats += " ".join(alert.item.title.split()) in quoted
        duplicates += len(quoted) - len(set(quoted))
        longest = max(longest, len(text))
    print(
        f"alerts={len(found)} bold_median={statistics.median(shares):.3f} "
        f"bold_max={max(shares):.3f} baseline_bold_median={statistics.median(baseline):.3f} "
        f"headline_line={max(lines)} snippets_max={max(quoted_counts)} "
        f"headline_repeats={repeats} duplicate_sentences={duplicates} longest={longest}"
    )


if __name__ == "__main__":
    main()
