"""Prometheus metrics of the provisioning machinery.

Counters and histograms live in each worker process; with several worker
processes prometheus-client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR)
aggregates them. Gauges about stores are computed from the database at scrape
time (see ``stores.metrics_view``), so they are right whichever process serves
the scrape.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

HELM_COMMANDS = Histogram(
    "storeplatform_command_duration_seconds",
    "Duration of helm and Kubernetes commands run for stores.",
    ["tool", "command", "exit_code"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
OPERATIONS = Histogram(
    "storeplatform_operation_duration_seconds",
    "Duration of store operations from start to final state.",
    ["operation", "engine", "outcome"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200),
)
FAILURES = Counter(
    "storeplatform_failures_total",
    "Store operations that failed, by reason.",
    ["operation", "engine", "reason"],
)


def observe_command(tool: str, command: str, exit_code: int | None, seconds: float) -> None:
    HELM_COMMANDS.labels(tool, command, str(exit_code)).observe(seconds)


def observe_operation(operation: str, engine: str, outcome: str, seconds: float) -> None:
    OPERATIONS.labels(operation, engine, outcome).observe(seconds)


def count_failure(operation: str, engine: str, reason: str) -> None:
    FAILURES.labels(operation, engine, reason).inc()
