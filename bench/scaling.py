"""Benchmark 2: does throughput scale with workers, and does the helm cap hold?

    .venv/bin/python bench/scaling.py [--stores 40] [--delay 2] [--workers 1,2,4]

The fake helm takes ``--delay`` seconds per install (FAKE_HELM_DELAY, the time
pods would take). ``--stores`` stores are created at once through the API and
run through 1, 2 and 4 Celery worker *processes* (``celery worker
--concurrency 1`` each, so each is a separate process with its own
connections, like separate pods). Wall time is from the first create to the
last READY, against the ideal ``stores x delay / workers``; target within
1.25x of ideal.

Then the global cap: STORE_MAX_CONCURRENT_HELM=2 with 4 workers; the most
helm upgrades overlapping in time (from FAKE_HELM_LOG) must be exactly 2.

Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Stack, machine, table

TARGET_RATIO = 1.25


def create_all(stack: Stack, count: int, tag: str) -> tuple[list[str], float]:
    ids: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(count)
    errors: list[str] = []

    def one(i: int) -> None:
        barrier.wait()
        response = stack.api("POST", "/api/stores/",
                             json={"name": f"Scale {tag} {i:03d}", "engine": "woocommerce"})
        if response.status_code != 202:
            errors.append(f"{response.status_code} {response.text[:200]}")
            return
        with lock:
            ids.append(response.json()["id"])

    started = time.time()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} creates failed: {errors[:3]}")
    return ids, started


def wait_ready(ids: list[str], timeout: float) -> float:
    from stores import constants as c
    from stores.models import Store, StoreEvent

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        statuses = list(Store.objects.filter(pk__in=ids).values_list("status", flat=True))
        if statuses.count(c.FAILED):
            raise RuntimeError("a store failed")
        if statuses.count(c.READY) == len(ids):
            last = StoreEvent.objects.filter(
                store_id__in=ids, status_to=c.READY).order_by("-created_at").first()
            return last.created_at.timestamp()
        time.sleep(0.1)
    raise TimeoutError(f"not all {len(ids)} ready after {timeout}s")


def max_overlap(runs: list[dict]) -> int:
    """Most intervals [start, end] open at one instant."""
    points = sorted([(r["spawned"] if "spawned" in r else r["start"], 1) for r in runs]
                    + [(r["end"], -1) for r in runs], key=lambda p: (p[0], p[1]))
    best = current = 0
    for _, step in points:
        current += step
        best = max(best, current)
    return best


def upgrades_of(stack: Stack, ids: list[str]) -> list[dict]:
    wanted = {f"store-{i}" for i in ids}
    return [r for r in stack.helm_runs() if r["command"] == "upgrade" and r["release"] in wanted]


def run(stack: Stack, workers: int, stores: int, delay: float, tag: str, **env) -> dict:
    stack.stop_workers()
    for _ in range(workers):
        stack.start_worker(concurrency=1, **env)
    for proc in stack.workers:
        proc.wait_for_log(" ready.")
    ids, started = create_all(stack, stores, tag)
    last_ready = wait_ready(ids, timeout=stores * delay * 3 + 60)
    wall = last_ready - started
    ideal = stores * delay / workers
    upgrades = upgrades_of(stack, ids)
    # The fake helm is a Python process: its start-up (not the platform's
    # time) comes on top of the delay; say how much.
    helm_seconds = sum(r["end"] - r.get("spawned", r["start"]) for r in upgrades)
    return {"workers": workers, "wall": wall, "ideal": ideal, "ratio": wall / ideal,
            "overlap": max_overlap(upgrades), "helm_mean": helm_seconds / len(upgrades),
            "ratio_measured": wall / (helm_seconds / workers)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=40)
    parser.add_argument("--delay", type=float, default=2.0, help="seconds per helm install")
    parser.add_argument("--workers", default="1,2,4", help="worker process counts to try")
    parser.add_argument("--cap-stores", type=int, default=20,
                        help="stores for the STORE_MAX_CONCURRENT_HELM=2 check")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"fake helm takes {args.delay:.1f} s per install; {args.stores} stores at once; "
          "N celery worker processes x concurrency 1")
    ok = True
    rows = []
    env = {"FAKE_HELM_DELAY": str(args.delay)}
    with Stack(workers=0, web_workers=4, env=env) as stack:
        for n in [int(w) for w in args.workers.split(",") if w]:
            result = run(stack, n, args.stores, args.delay, f"w{n}")
            verdict = "PASS" if result["ratio"] <= TARGET_RATIO else "MISS"
            ok = ok and verdict == "PASS"
            rows.append([str(n), f"{result['wall']:.1f} s", f"{result['ideal']:.1f} s",
                         f"{result['ratio']:.2f}x", f"{result['helm_mean']:.2f} s",
                         f"{result['ratio_measured']:.2f}x", str(result["overlap"]),
                         f"<= {TARGET_RATIO}x", verdict])
            print(f"  {n} worker(s): {rows[-1][1]} (ideal {rows[-1][2]})", flush=True)
        print()
        print(table(rows, ["workers", "wall time", "ideal", "ratio", "helm run (mean)",
                           "ratio to measured helm", "max helm overlap", "target", ""]))
        print("ideal = stores x delay / workers; 'ratio to measured helm' divides by the sum of "
              "the fake helm's measured run times (spawn to exit) / workers instead")

        # The cap: fresh workers that read STORE_MAX_CONCURRENT_HELM=2 at start.
        result = run(stack, 4, args.cap_stores, args.delay, "cap",
                     STORE_MAX_CONCURRENT_HELM="2")
    verdict = "PASS" if result["overlap"] == 2 else "MISS"
    ok = ok and verdict == "PASS"
    print(f"\nSTORE_MAX_CONCURRENT_HELM=2, 4 workers, {args.cap_stores} stores: max overlap of "
          f"helm upgrade intervals = {result['overlap']} (must be 2) {verdict}; wall "
          f"{result['wall']:.1f} s, ideal at 2 slots "
          f"{args.cap_stores * args.delay / 2:.1f} s")
    print(f"\nresult: {'all targets met' if ok else 'TARGET MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
