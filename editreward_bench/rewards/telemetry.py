"""The reward server's figures in Prometheus' text format (``GET /metrics``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .model import RewardModel

#: Failure reasons as metric labels (a fixed set: a label per message would explode).
FAILURE_KINDS = (
    "invalid_item", "image", "deadline", "unparseable", "timeout", "connection",
    "http_429", "http_5xx", "http_4xx", "other",
)  # fmt: skip
_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 300, 600)


def failure_kind(error: str | None) -> str:
    """The label of an item's error."""
    text = (error or "").lower()
    for needle, kind in (
        ("invalid item", "invalid_item"), ("image:", "image"), ("deadline", "deadline"),
        ("unparseable", "unparseable"), ("timeout", "timeout"), ("connection", "connection"),
        ("http 429", "http_429"),
    ):  # fmt: skip
        if needle in text:
            return kind
    if "http 5" in text:
        return "http_5xx"
    if "http 4" in text:
        return "http_4xx"
    return "other"


class _Live(Collector):
    """Figures read when scraped: backend requests in flight, replicas up, running shares."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.t = telemetry

    def collect(self) -> Iterator[Any]:
        pool = self.t.model.pool
        in_flight = GaugeMetricFamily(
            "erb_reward_backend_in_flight", "Backend requests in flight (all replicas)."
        )
        in_flight.add_metric([], float(pool.in_flight if pool is not None else 0))
        yield in_flight
        if pool is not None:
            up = GaugeMetricFamily(
                "erb_reward_replica_up", "1 while a replica takes requests.", labels=["replica"]
            )
            for replica in pool.replicas:
                up.add_metric([replica.shown], 1.0 if replica.up else 0.0)
            yield up
        for name, help_text, num, den in (
            ("erb_reward_prompt_following_zero_share",
             "Running share of scored items whose prompt-following score is 0.",
             self.t.zero_pf, self.t.scored),
            ("erb_reward_zero_spread_group_share",
             "Running share of groups (2+ scored items) whose rewards are all equal.",
             self.t.zero_spread, self.t.groups),
        ):  # fmt: skip
            gauge = GaugeMetricFamily(name, help_text)
            gauge.add_metric([], num / den if den else 0.0)
            yield gauge


class Telemetry:
    """Counters and histograms of one reward server (its own registry)."""

    def __init__(self, model: RewardModel) -> None:
        self.model = model
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "erb_reward_requests", "Score requests by HTTP status.", ["status"], registry=r
        )
        self.items = Counter(
            "erb_reward_items", "Items by outcome (scored, failed, invalid).", ["outcome"],
            registry=r,
        )  # fmt: skip
        self.passes = Counter(
            "erb_reward_passes", "Judge passes by status.", ["status"], registry=r
        )
        self.failures = Counter(
            "erb_reward_failures", "Items without a reward, by reason.", ["reason"], registry=r
        )
        self.request_seconds = Histogram(
            "erb_reward_request_seconds", "Time to answer a score request.",
            buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.backend_seconds = Histogram(
            "erb_reward_backend_request_seconds", "Time of one backend request, by outcome.",
            ["outcome"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.backend_requests = Counter(
            "erb_reward_backend_requests", "Backend requests by replica and outcome.",
            ["replica", "outcome"], registry=r,
        )  # fmt: skip
        self.group_std = Histogram(
            "erb_reward_group_std", "Standard deviation of the rewards of a group (2+ items).",
            buckets=(0, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 4), registry=r,
        )  # fmt: skip
        self.zero_pf = self.scored = self.zero_spread = self.groups = 0
        r.register(_Live(self))
        if model.pool is not None:
            model.pool.on_call = self.backend_call

    def backend_call(self, replica: str, seconds: float, outcome: str) -> None:
        self.backend_seconds.labels(outcome).observe(seconds)
        self.backend_requests.labels(replica, outcome).inc()

    def record(self, results: list[dict[str, Any]], invalid: int, diag: dict[str, Any]) -> None:
        """One answered request: its items, passes, failures and diagnostics."""
        for result in results:
            if result["error"] is None:
                self.items.labels("scored").inc()
            else:
                self.failures.labels(failure_kind(result["error"])).inc()
        self.items.labels("invalid").inc(invalid)
        self.items.labels("failed").inc(diag["failed"] - invalid)
        self.zero_pf += diag["prompt_following_zero"]
        self.scored += diag["scored"]
        self.groups += diag["groups"]
        self.zero_spread += diag["zero_spread_groups"]
        for value in diag["group_std"].values():
            self.group_std.observe(value)

    def count_passes(self, ok: int, failed: int) -> None:
        self.passes.labels("ok").inc(ok)
        self.passes.labels("failed").inc(failed)

    def render(self) -> bytes:
        return generate_latest(self.registry)
