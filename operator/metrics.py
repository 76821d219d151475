"""Prometheus metrics of the operator itself: how often each kind is reconciled, how
long a reconcile takes, how many fail. Served by `brook operator --metrics HOST:PORT`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

REGISTRY = CollectorRegistry()
RECONCILES = Counter("brook_operator_reconciles", "Reconciles, by resource kind and result (success, failure)",
                     ["kind", "result"], registry=REGISTRY)
DURATION = Histogram("brook_operator_reconcile_duration_seconds", "Time one reconcile takes, by resource kind",
                     ["kind"], registry=REGISTRY,
                     buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))


@contextmanager
def reconciling(kind: str) -> Iterator[None]:
    started = time.monotonic()
    result = "failure"
    try:
        yield
        result = "success"
    finally:
        RECONCILES.labels(kind, result).inc()
        DURATION.labels(kind).observe(time.monotonic() - started)


def serve(address: str) -> None:
    """Serve /metrics on HOST:PORT (a thread)."""
    host, _, port = address.rpartition(":")
    start_http_server(int(port), addr=host or "0.0.0.0", registry=REGISTRY)
