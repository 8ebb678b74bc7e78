"""Prometheus metrics: requests and latency per route, and the hot-path cache's hits and misses."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """One registry per app, so several apps (tests, benchmarks) never collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "agentreg_http_requests_total",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "agentreg_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.cache = Counter(
            "agentreg_hot_cache_requests_total", "Hot-path cache lookups", ["result"], registry=self.registry
        )
        self.cache_hits = self.cache.labels("hit")
        self.cache_misses = self.cache.labels("miss")
        ratio = Gauge(
            "agentreg_hot_cache_hit_ratio", "Hot-path cache hit ratio since start", registry=self.registry
        )
        ratio.set_function(self._hit_ratio)

    def _hit_ratio(self) -> float:
        hits = self.cache_hits._value.get()
        total = hits + self.cache_misses._value.get()
        return hits / total if total else 0.0
