"""The service's Prometheus metrics, in a registry of their own (one per app)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]


class Metrics:
    """The service's Prometheus metrics, in a registry of its own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "couturier_requests",
            "HTTP requests by route, model and status code",
            ["route", "model", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "couturier_request_seconds",
            "request latency by route, model and status code (shed 503s are fast: keep them apart)",
            ["route", "model", "code"],
            buckets=(
                *(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.075, 0.1, 0.15, 0.2),
                *(0.25, 0.3, 0.4, 0.5, 0.75, 1, 2.5),
            ),
            registry=self.registry,
        )
        self.batch = Histogram(
            "couturier_batch_rows",
            "rows per model execution",
            ["model"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=self.registry,
        )
        self.queue_seconds = Histogram(
            "couturier_queue_seconds",
            "time the oldest request of a batch waited",
            ["model"],
            buckets=(0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1),
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "couturier_queue_rows", "rows waiting to be batched", ["model"], registry=self.registry
        )
        self.shed = Counter(
            "couturier_shed",
            "requests refused at once because the queue was full",
            ["model"],
            registry=self.registry,
        )
        self.decisions = Counter(
            "couturier_decisions",
            "decisions answered by a domain route, by model and decision",
            ["model", "decision"],
            registry=self.registry,
        )
        self.degraded = Counter(
            "couturier_degraded",
            "answers given in a degraded mode, by model and the stage that degraded",
            ["model", "stage"],
            registry=self.registry,
        )
        self.swaps = Counter(
            "couturier_swaps",
            "hot swaps to a new version, by role (champion, canary, shadow) and outcome "
            "(refused: it failed its health check or could not load)",
            ["model", "role", "outcome"],
            registry=self.registry,
        )
        self.routed = Counter(
            "couturier_routed",
            "unversioned requests of a model with a canary or shadow, by the version role that "
            "answered (default or canary)",
            ["model", "role"],
            registry=self.registry,
        )
        self.shadow = Counter(
            "couturier_shadow",
            "requests mirrored to a shadow version, by outcome (ok or failed)",
            ["model", "outcome"],
            registry=self.registry,
        )
        #: requests being answered now, moved by the service's ``__call__`` on the event loop
        #: (one loop per process: a plain int, no lock) and read only when /metrics is
        #: scraped; the autoscaler's second signal (deploy/README.md)
        self.in_flight = 0
        self.requests_in_flight = Gauge(
            "couturier_requests_in_flight",
            "HTTP requests this process is answering now (/metrics and the health probes left out)",
            registry=self.registry,
        )
        self.requests_in_flight.set_function(lambda: self.in_flight)
        self.loaded = Gauge(
            "couturier_model_loaded_version",
            "the version of each loaded model that answers by default",
            ["model"],
            registry=self.registry,
        )

    def observer(self, model: str) -> Callable[[int, float], None]:
        """What a batcher calls per model execution: (rows, seconds the oldest row waited;
        negative when the call was never queued)."""
        rows, waited = self.batch.labels(model), self.queue_seconds.labels(model)

        def observe(batch_rows: int, queued_s: float) -> None:
            rows.observe(batch_rows)
            if queued_s >= 0:
                waited.observe(queued_s)

        return observe
