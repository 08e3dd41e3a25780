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


# Backups (issue 12). The age of each store's last good backup is a gauge
# read from the database at scrape time (stores.metrics_view).
BACKUP_DURATION = Histogram(
    "storeplatform_backup_duration_seconds",
    "Duration of store backups, from the Job's start to the platform's verification.",
    ["engine", "outcome"],
    buckets=(5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600),
)
BACKUP_SIZE = Histogram(
    "storeplatform_backup_size_bytes",
    "Size of verified store backups (database and files).",
    ["engine"],
    buckets=(1e6, 1e7, 1e8, 5e8, 1e9, 5e9, 1e10, 5e10),
)


BACKUP_FAILURES = Counter(
    "storeplatform_backup_failures_total",
    "Failed store backups, by why: the Job failed (job), the Job ran past its time "
    "(timed_out), or what it wrote did not pass the platform's check (verification).",
    ["engine", "reason"],
)


def observe_backup(engine: str, outcome: str, seconds: float, size: int | None,
                   reason: str = "") -> None:
    BACKUP_DURATION.labels(engine, outcome).observe(seconds)
    if size is not None:
        BACKUP_SIZE.labels(engine).observe(size)
    if reason:
        BACKUP_FAILURES.labels(engine, reason).inc()
