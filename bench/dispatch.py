"""Benchmark 1: how fast work moves from the API to helm and back.

    .venv/bin/python bench/dispatch.py [--idle 20] [--bursts 20,50] [--workers 4]

Starts the whole stack (bench/harness.py): PostgreSQL, Redis, gunicorn, the
fake cluster, and real Celery workers (N processes, concurrency 1 each).
The fake helm returns at once (FAKE_HELM_RENDER=0, no delay), so what is
measured is the platform's own latency:

- idle: stores created one after another through POST /api/stores/, each
  waited for until ready before the next;
- burst: stores created at once from as many threads.

Per store, from three clocks on this one machine:
- API 202 -> helm: the client's receive time of the 202, to the fake helm's
  spawn (its wrapper's timestamp) and to its main() starting (FAKE_HELM_LOG
  "start"; the difference is the Python interpreter of the fake starting);
- helm exit -> ready: FAKE_HELM_LOG "end" to the READY status event's
  timestamp (taken in the transaction that commits the status);
- platform time: PROVISIONING event to READY event, less the time helm ran.

Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Stack, machine, ms, summary, table

TARGET_TO_HELM = 0.100
TARGET_TO_READY = 0.100
TARGET_PLATFORM = 0.050
TARGET_BURST_ALL_READY = 3.0
BASELINE = {
    "single": "2.1 s",
    20: "p95 20 s",
    50: "p95 48 s",
}


def create(stack: Stack, name: str) -> tuple[str, float, float]:
    sent = time.time()
    response = stack.api("POST", "/api/stores/", json={"name": name, "engine": "woocommerce"})
    received = time.time()
    if response.status_code != 202:
        raise RuntimeError(f"create answered {response.status_code}: {response.text[:300]}")
    return response.json()["id"], sent, received


def wait_ready(store_ids: list[str], timeout: float) -> None:
    from stores import constants as c
    from stores.models import Store

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = dict(Store.objects.filter(pk__in=store_ids).values_list("id", "status"))
        if all(states.get(s) == c.READY for s in store_ids):
            return
        bad = dict(Store.objects.filter(pk__in=store_ids, status=c.FAILED)
                   .values_list("id", "status_message"))
        if bad:
            raise RuntimeError(f"stores failed: {bad}")
        time.sleep(0.02)
    raise TimeoutError(f"not all ready after {timeout}s")


def measure(stack: Stack, created: dict[str, float]) -> dict[str, dict]:
    """Per store: the figures described in the module docstring."""
    from stores import constants as c
    from stores.models import StoreEvent

    runs: dict[str, list[dict]] = {}
    for run in stack.helm_runs():
        runs.setdefault(run["release"], []).append(run)
    events: dict[str, dict[str, float]] = {}
    for store_id, to, at in StoreEvent.objects.filter(
        store_id__in=list(created), kind=c.EVENT_STATUS, status_to__in=[c.PROVISIONING, c.READY]
    ).values_list("store_id", "status_to", "created_at"):
        events.setdefault(store_id, {})[to] = at.timestamp()
    result = {}
    for store_id, received in created.items():
        helm_runs = runs.get(f"store-{store_id}", [])
        upgrade = next(r for r in helm_runs if r["command"] == "upgrade")
        picked, ready = events[store_id][c.PROVISIONING], events[store_id][c.READY]
        helm_time = sum(r["end"] - r.get("spawned", r["start"]) for r in helm_runs
                        if picked <= r.get("spawned", r["start"]) <= ready)
        result[store_id] = {
            "to_pickup": picked - received,
            "to_spawn": upgrade.get("spawned", upgrade["start"]) - received,
            "to_helm": upgrade["start"] - received,
            "to_ready": ready - upgrade["end"],
            "platform": (ready - picked) - helm_time,
            "ready_at": ready,
            "helm_runs": len(helm_runs),
        }
    return result


def row(label: str, values: list[float], target: float | None) -> list[str]:
    s = summary(values)
    verdict = "" if target is None else ("PASS" if s["p95"] < target else "MISS")
    return [label, ms(s["p50"]), ms(s["p95"]), ms(s["max"]),
            "" if target is None else f"< {ms(target)}", verdict]


def report(title: str, figures: dict[str, dict], targets: bool) -> tuple[list[list[str]], bool]:
    rows, ok = [], True
    specs = [
        ("API 202 -> worker picked up", "to_pickup", None),
        ("API 202 -> helm spawned", "to_spawn", TARGET_TO_HELM if targets else None),
        ("API 202 -> helm main() (log start)", "to_helm", TARGET_TO_HELM if targets else None),
        ("helm exit (log end) -> READY", "to_ready", TARGET_TO_READY if targets else None),
        ("platform time per operation", "platform", TARGET_PLATFORM if targets else None),
    ]
    for label, key, target in specs:
        r = row(label, [f[key] for f in figures.values()], target)
        ok = ok and r[-1] != "MISS"
        rows.append(r)
    print(f"\n{title}")
    print(table(rows, ["measure", "p50", "p95", "max", "target (p95)", ""]))
    return rows, ok


def burst(stack: Stack, size: int, tag: str,
          quiet: bool = False) -> tuple[dict[str, dict], float]:
    barrier = threading.Barrier(size)
    created: dict[str, float] = {}
    errors: list[str] = []
    first_sent = []
    lock = threading.Lock()

    def one(i: int) -> None:
        barrier.wait()
        try:
            store_id, sent, received = create(stack, f"Burst {tag} {i:03d}")
        except Exception as exc:  # report, don't hide
            errors.append(repr(exc))
            return
        with lock:
            created[store_id] = received
            first_sent.append(sent)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(size)]
    cpu_before = stack.cpu_snapshot()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} creates failed: {errors[:3]}")
    wait_ready(list(created), timeout=120)
    cpu_after = stack.cpu_snapshot()
    figures = measure(stack, created)
    all_ready = max(f["ready_at"] for f in figures.values()) - min(first_sent)
    # Where the CPU went: on 2 cores, N CPU-seconds need at least N/2 s.
    used = {k: cpu_after[k] - cpu_before[k] for k in cpu_after}
    total = sum(used.values())
    if quiet:
        return figures, all_ready
    print(f"\nCPU used by the stack during the {size}-store burst: {total:.2f} CPU-s "
          f"({total / size * 1000:.0f} ms per store; {total / (os.cpu_count() or 1):.2f} s of "
          f"wall time at best on {os.cpu_count()} cores)")
    print("  " + ", ".join(f"{k} {v:.2f} s" for k, v in used.items()))
    return figures, all_ready


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=int, default=20, help="stores created one by one")
    parser.add_argument("--bursts", default="20,50", help="sizes of the at-once bursts")
    parser.add_argument("--workers", type=int, default=4, help="worker processes")
    parser.add_argument("--web-workers", type=int, default=4, help="gunicorn workers")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"workers: {args.workers} celery worker processes x concurrency 1; gunicorn "
          f"{args.web_workers} sync workers; fake helm returns at once (no rendering)")
    ok = True
    with Stack(workers=args.workers, web_workers=args.web_workers) as stack:
        # Warm-up: imports, connection pools, the first run of every worker
        # (a burst, so that each worker gets some).
        burst(stack, 3 * args.workers, "warm-up", quiet=True)

        created: dict[str, float] = {}
        for i in range(args.idle):
            store_id, _, received = create(stack, f"Idle store {i:03d}")
            wait_ready([store_id], 60)
            created[store_id] = received
            time.sleep(0.2)  # idle means idle: let the system settle
        idle = measure(stack, created)
        _, idle_ok = report(
            f"(a) idle system: {args.idle} stores one after another", idle, True)
        ok = ok and idle_ok

        burst_results = {}
        for size in [int(s) for s in args.bursts.split(",") if s]:
            time.sleep(1)
            figures, all_ready = burst(stack, size, str(size))
            burst_results[size] = (figures, all_ready)
            report(f"(b) burst: {size} stores created at once, {args.workers} workers", figures,
                   False)
            target = TARGET_BURST_ALL_READY if size == 50 else None
            verdict = "" if target is None else ("PASS" if all_ready < target else "MISS")
            ok = ok and verdict != "MISS"
            print(f"all {size} ready {all_ready:.2f} s after the first request"
                  + (f" (target < {target:.0f} s) {verdict}" if target else ""))

    print("\nSide by side with the poll-based baseline (issue 1)")
    rows = [["one store: API answer -> helm starts", BASELINE["single"],
             f"p50 {ms(summary([f['to_helm'] for f in idle.values()])['p50'])}, "
             f"p95 {ms(summary([f['to_helm'] for f in idle.values()])['p95'])}"]]
    for size, (figures, all_ready) in burst_results.items():
        s = summary([f["to_helm"] for f in figures.values()])
        rows.append([f"{size} at once: API answer -> helm starts", BASELINE.get(size, "-"),
                     f"p50 {ms(s['p50'])}, p95 {ms(s['p95'])}; all ready {all_ready:.2f} s"])
    rows.append(["listing 10,000 vs 100 stores", "60x", "see bench/listing.py"])
    print(table(rows, ["", "baseline", "now"]))
    print(f"\nresult: {'all targets met' if ok else 'TARGET MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
