"""Optional Prometheus metrics: fetches, matches, alerts queued, messages sent and failed, backlog.

Counters are fed from the stats each poll cycle and delivery pass already produce, so the
stages themselves know nothing of Prometheus; the outbox backlog is read from the store when
Prometheus scrapes. Off unless `metrics.port` is configured.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class _Backlog(Collector):
    """Outbox rows per state, read from the database at scrape time."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("alertbot_outbox_rows", "Outbox rows by state", labels=["state"])
        for state, count in sorted(self.store.outbox_counts().items()):
            family.add_metric([state], count)
        yield family


class Metrics:
    """The bot's counters and latencies, in a registry of their own."""

    def __init__(self, store: Any | None = None) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.fetches = Counter(
            "alertbot_fetches", "Feed fetches by outcome", ["outcome"], registry=r
        )
        self.fetch_seconds = Histogram("alertbot_fetch_seconds", "Feed fetch latency", registry=r)
        self.cycle_seconds = Histogram("alertbot_cycle_seconds", "Poll cycle duration", registry=r)
        self.items = Counter("alertbot_items", "New or changed items matched", registry=r)
        self.matched = Counter("alertbot_items_matched", "Items that fired a rule", registry=r)
        self.alerts = Counter("alertbot_alerts_queued", "Alerts recorded for delivery", registry=r)
        self.messages = Counter(
            "alertbot_messages", "Telegram sends by outcome", ["outcome"], registry=r
        )
        if store is not None:
            r.register(_Backlog(store))

    def observe_cycle(self, stats: Any, seconds: float) -> None:
        """Count what one poll cycle did (a poller.CycleStats)."""
        self.cycle_seconds.observe(seconds)
        for outcome in ("fetched", "unchanged", "failed"):
            self.fetches.labels(outcome).inc(getattr(stats, outcome))
        for latency in stats.fetch_seconds:
            self.fetch_seconds.observe(latency)
        self.items.inc(stats.items_new + stats.items_changed)
        self.matched.inc(stats.matched)
        self.alerts.inc(len(stats.alerts))

    def observe_delivery(self, stats: Any) -> None:
        """Count what one delivery pass did (a deliver.Stats)."""
        for outcome in ("sent", "retried", "failed", "rate_limited"):
            self.messages.labels(outcome).inc(getattr(stats, outcome))

    def registry_text(self) -> str:
        """The metrics as Prometheus serves them (text format)."""
        return generate_latest(self.registry).decode()

    def serve(self, port: int, address: str = "0.0.0.0") -> Any:
        """Serve /metrics on `port` from a background thread; returns the server."""
        server, _ = start_http_server(port, addr=address, registry=self.registry)
        return server
