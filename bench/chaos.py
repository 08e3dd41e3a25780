"""Chaos (issue 5): many stores through random faults; does everything converge?

    .venv/bin/python bench/chaos.py [--seconds 70] [--seed 1]

Starts the whole stack (bench/harness.py) with beat, a short reconcile
interval (2 s) and lease (5 s), and short deadlines, so the reconciler has
to repair what the faults break. For ``--seconds`` it creates a store about
every 0.7 s through the API, deletes about half of them (some while still
provisioning) and retries every store that failed, while injecting, at
random:

- per helm run (a wildcard rule the next ``helm upgrade`` takes): a failure
  with real helm error text, a hang until helm's --timeout (30 s, the
  shortest the platform passes), or "pending" (helm SIGKILLed mid-install,
  leaving the release locked in pending-install);
- per deletion: the namespace stuck Terminating on a finalizer for 8 s;
- globally: API throttling (429s), the API refusing connections for 3 s, a
  worker process SIGKILLed mid-run (and a replacement started), Redis
  stopped and restarted (its queued messages are lost: it has no
  persistence).

Then it stops injecting and keeps retrying failed stores until every store
is in its intended state or the deadline passes, and prints:

- operations (creates, deletes, retries accepted with 202), and how many met
  a fault (a helm fault or stuck namespace of their own, or a global fault
  while they were in flight);
- converged: stores in their intended final state (created: READY with its
  namespace; deleted: DELETED with no namespace left);
- stuck: stores still busy one reconcile period after the deadline;
- orphaned: managed namespaces of no live store, or live stores without one;
- lost: accepted requests that never produced any worker activity;
- time to converge: from the request that set a store's intended state (its
  create, or its delete) to that state.

Targets: >= 100 operations, faults in at least a third, 0 stuck, 0 orphaned,
0 lost, every store converged; exits 1 otherwise.
"""

from __future__ import annotations

import argparse
import fcntl
import itertools
import json
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Stack, machine, summary, table

CHAOS_ENV = {
    "STORE_PROVISION_TIMEOUT": "20",
    "STORE_DELETE_TIMEOUT": "20",
    "STORE_RECONCILE_INTERVAL": "2",
    "STORE_LEASE_SECONDS": "5",
    "STORE_HEARTBEAT_SECONDS": "1",
    "STORE_RETRY_BACKOFF": "0.5",
    "STORE_TRANSIENT_RETRIES": "4",
    "STORE_READY_PROBE_TIMEOUT": "10",
    "STORE_NAMESPACE_WAIT": "5",
    "STORE_DELETE_RETRY_INTERVAL": "3",
    # Not under test here; kept out of the way.
    "STORE_HEALTH_INTERVAL": "3600",
    "STORE_ORPHAN_INTERVAL": "3600",
    "FAKE_HELM_DELAY": "0.3",
}
RECONCILE = 2.0

# Real helm 4 wording, each classified by provisioning.helm.
HELM_FAILURES = [
    'Unable to continue with install: Service "web" in namespace "{ns}" exists and cannot be '
    'imported into the current release: invalid ownership metadata; annotation validation '
    'error: missing key "meta.helm.sh/release-name": must be set to "{release}"',
    'failed pre-install: 1 error occurred:\n\t* timed out waiting for the condition',
    'Kubernetes cluster unreachable: Get "https://127.0.0.1:6443/version": dial tcp '
    "127.0.0.1:6443: connect: connection refused",
    "the server has received too many requests and has asked us to try again later",
    'cannot patch "web" with kind Deployment: Deployment.apps "web" is invalid: '
    "spec.selector: Invalid value: v1.LabelSelector{...}: field is immutable",
]


@dataclass
class Op:
    kind: str  # create | delete | retry
    store_id: str
    accepted: float
    own_fault: str = ""


@dataclass
class Tracker:
    ops: list[Op] = field(default_factory=list)
    intended: dict[str, str] = field(default_factory=dict)  # store id -> ready | deleted
    intent_at: dict[str, float] = field(default_factory=dict)
    windows: list[tuple[str, float, float]] = field(default_factory=list)  # global faults
    injected: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, name: str) -> None:
        with self.lock:
            self.injected[name] = self.injected.get(name, 0) + 1


def add_helm_fault(stack: Stack, rule: dict) -> None:
    """Append a rule to the fake helm's faults file, under its lock."""
    with open(stack.helm_faults, "r+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        rules = json.loads(handle.read() or "[]")
        rules.append(rule)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(rules))


def helm_faults_taken(stack: Stack) -> dict[str, int]:
    taken: dict[str, int] = {}
    for rule in json.loads(stack.helm_faults.read_text() or "[]"):
        if rule.get("times") == 0:
            name = f"helm {rule['action']}"
            taken[name] = taken.get(name, 0) + 1
    return taken


class Chaos:
    def __init__(self, stack: Stack, seconds: float, seed: int):
        self.stack = stack
        self.seconds = seconds
        self.rng = random.Random(seed)
        # The fault thread draws from its own generator, so a seed repeats.
        self.fault_rng = random.Random(seed + 1)
        self.t = Tracker()
        self.stop = threading.Event()
        self.procs_lock = threading.Lock()
        self.crashes: list[str] = []

    # -- requests ---------------------------------------------------------
    def accept(self, kind: str, store_id: str, response, sent: float,
               own_fault: str = "") -> bool:
        """Count an accepted request; ``sent`` is when it left the client."""
        if response.status_code != 202:
            return False
        with self.t.lock:
            self.t.ops.append(Op(kind, store_id, sent, own_fault))
        return True

    def create(self, i: int) -> None:
        fault = ""
        if self.rng.random() < 0.30:
            fault = self.rng.choices(["fail", "hang", "pending"], weights=[6, 1, 3])[0]
            rule = {"command": "upgrade", "release": "*", "times": 1, "action": fault}
            if fault == "fail":
                # A wildcard rule: the next upgrade takes it, whichever store it is for.
                rule["stderr"] = self.rng.choice(HELM_FAILURES).replace(
                    "{ns}", "store-web").replace("{release}", "store-web")
            add_helm_fault(self.stack, rule)
        sent = time.time()
        response = self.stack.api("POST", "/api/stores/",
                                  json={"name": f"Chaos {i:03d}", "engine": "woocommerce"})
        if response.status_code == 202:
            store_id = response.json()["id"]
            self.accept("create", store_id, response, sent, fault)
            with self.t.lock:
                self.t.intended[store_id] = "ready"
                self.t.intent_at[store_id] = time.time()

    def delete_one(self) -> None:
        with self.t.lock:
            candidates = [s for s, want in self.t.intended.items() if want == "ready"]
        if not candidates:
            return
        store_id = self.rng.choice(candidates)
        stuck = self.rng.random() < 0.25
        if stuck:
            self.stuck_namespace(f"store-{store_id}", 8.0)
        sent = time.time()
        response = self.stack.api("DELETE", f"/api/stores/{store_id}/")
        if self.accept("delete", store_id, response, sent,
                       "stuck namespace" if stuck else ""):
            with self.t.lock:
                self.t.intended[store_id] = "deleted"
                self.t.intent_at[store_id] = time.time()

    def retry_failed(self) -> None:
        from stores import constants as c
        from stores.models import Store

        failed = list(Store.objects.filter(status=c.FAILED).values_list("id", flat=True))
        for store_id in failed:
            sent = time.time()
            response = self.stack.api("POST", f"/api/stores/{store_id}/retry/")
            self.accept("retry", store_id, response, sent)

    # -- faults -------------------------------------------------------------
    def stuck_namespace(self, namespace: str, seconds: float) -> None:
        faults = self.stack.fake.faults
        with self.stack.fake.cluster.lock:
            faults["stuck_namespaces"] = set(faults["stuck_namespaces"]) | {namespace}
        self.t.count("namespace stuck terminating")

        def clear():
            time.sleep(seconds)
            with self.stack.fake.cluster.lock:
                faults["stuck_namespaces"] = set(faults["stuck_namespaces"]) - {namespace}

        threading.Thread(target=clear, daemon=True).start()

    def global_faults(self) -> None:
        kinds = ["throttle", "api refusing", "worker SIGKILL", "redis restart"]
        i = 0
        while not self.stop.wait(self.fault_rng.uniform(3.0, 6.0)):
            kind = kinds[i % len(kinds)] if i < len(kinds) else self.fault_rng.choice(kinds)
            i += 1
            started = time.time()
            if kind == "throttle":
                with self.stack.fake.cluster.lock:
                    self.stack.fake.faults["throttle"] = self.fault_rng.randint(10, 40)
                time.sleep(1.0)
            elif kind == "api refusing":
                self.stack.fake.pause()
                time.sleep(3.0)
                self.stack.fake.resume()
            elif kind == "worker SIGKILL":
                with self.procs_lock:
                    victim = self.fault_rng.choice(self.stack.workers)
                    victim.kill(with_descendants=True)  # the pod dies, its helm too
                    self.stack.workers.remove(victim)
                    self.stack.start_worker()
            elif kind == "redis restart":
                self.stack.redis.restart()
            self.t.windows.append((kind, started, time.time()))
            self.t.count(kind)

    def supervise(self, done: threading.Event) -> None:
        """Restart a worker or beat process that exited on its own, as
        Kubernetes restarts a crashed container; each one is reported."""
        while not done.wait(0.5):
            with self.procs_lock:
                for proc in list(self.stack.workers):
                    if not proc.alive():
                        self.crashes.append(f"{proc.name}: {last_error(proc)}")
                        proc.kill()  # whatever is left of its process group
                        self.stack.workers.remove(proc)
                        self.stack.start_worker()
                if self.stack.beat is not None and not self.stack.beat.alive():
                    self.crashes.append(f"beat: {last_error(self.stack.beat)}")
                    self.stack.start_beat()

    # -- the run ------------------------------------------------------------
    def run(self) -> None:
        chaos = threading.Thread(target=self.global_faults, daemon=True)
        chaos.start()
        end = time.monotonic() + self.seconds
        i = 0
        next_retry = 0.0
        try:
            while time.monotonic() < end:
                self.create(i)
                i += 1
                if self.rng.random() < 0.5:
                    time.sleep(self.rng.uniform(0, 0.5))
                    self.delete_one()
                if time.monotonic() > next_retry:
                    self.retry_failed()
                    next_retry = time.monotonic() + 2
                time.sleep(self.rng.uniform(0.3, 0.9))
        finally:
            self.stop.set()
            chaos.join(timeout=30)

    def converge(self, timeout: float) -> float:
        """Retry failed stores until all are where they should be."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.in_place().values()):
                break
            self.retry_failed()
            time.sleep(1.0)
        return time.monotonic()

    def in_place(self) -> dict[str, bool]:
        from stores import constants as c
        from stores.models import Store

        namespaces = self.live_namespaces()
        status = dict(Store.objects.values_list("id", "status"))
        result = {}
        for store_id, want in self.t.intended.items():
            if want == "ready":
                result[store_id] = (status.get(store_id) == c.READY
                                    and f"store-{store_id}" in namespaces)
            else:
                result[store_id] = (status.get(store_id) == c.DELETED
                                    and f"store-{store_id}" not in namespaces)
        return result

    def live_namespaces(self) -> set[str]:
        from stores import constants as c

        return {ns["metadata"]["name"] for ns in
                self.stack.fake.namespaces(f"{c.LABEL_MANAGED_BY}={c.MANAGED_BY}")}


def last_error(proc) -> str:
    lines = [ln for ln in proc.log().splitlines() if "CRITICAL" in ln or "Error" in ln]
    return lines[-1][-160:] if lines else f"exit {proc.proc.returncode}"


def overlapping_helm_runs(runs: list[dict]) -> int:
    """Pairs of helm runs on the same release at the same time: two workers
    acting on one store (the lease should make this impossible). Runs killed
    by SIGKILL write no log line, so they cannot be counted here."""
    by_release: dict[str, list[tuple[float, float]]] = {}
    for run in runs:
        if run["command"] in ("upgrade", "uninstall", "rollback"):
            by_release.setdefault(run["release"], []).append(
                (run.get("spawned", run["start"]), run["end"]))
    count = 0
    for intervals in by_release.values():
        intervals.sort()
        for (_, end), (start, _) in itertools.pairwise(intervals):
            if start < end:
                count += 1
    return count


def report(chaos: Chaos, converge_seconds: float) -> bool:
    from stores import constants as c
    from stores.models import Store, StoreEvent

    t = chaos.t
    ops = t.ops
    # Worker activity: status events written by a worker or the reconciler.
    activity: dict[str, list[tuple[float, str]]] = {}
    for store_id, at, to in StoreEvent.objects.filter(
        kind=c.EVENT_STATUS, actor__in=["worker", "reconciler"]
    ).values_list("store_id", "created_at", "status_to"):
        activity.setdefault(store_id, []).append((at.timestamp(), to))
    lost = [op for op in ops
            if not any(at >= op.accepted for at, _ in activity.get(op.store_id, []))]

    def done_at(op: Op) -> float:
        ends = [at for at, to in activity.get(op.store_id, [])
                if at >= op.accepted and to in (c.READY, c.FAILED, c.DELETED)]
        return min(ends) if ends else float("inf")

    faulted = 0
    for op in ops:
        end = done_at(op)
        in_window = any(start <= end and op.accepted <= stop for _, start, stop in t.windows)
        if op.own_fault or in_window:
            faulted += 1
    for name, n in helm_faults_taken(chaos.stack).items():
        t.injected[name] = n

    place = chaos.in_place()
    converged = sum(place.values())
    statuses = dict(Store.objects.values_list("id", "status"))
    stuck = [s for s, st in statuses.items() if st in c.BUSY_STATES]
    namespaces = chaos.live_namespaces()
    live = {s for s, st in statuses.items() if st != c.DELETED}
    orphaned = sorted(ns for ns in namespaces if ns.removeprefix("store-") not in live)
    orphaned += sorted(f"store-{s} (no namespace)" for s in live
                       if statuses[s] in c.RUNNING_STATES and f"store-{s}" not in namespaces)
    no_reason = Store.objects.filter(status=c.FAILED, status_reason="").count()
    double = overlapping_helm_runs(chaos.stack.helm_runs())
    resumed = StoreEvent.objects.filter(reason=c.REASON_WORKER_LOST).count()
    unlocked = StoreEvent.objects.filter(reason=c.REASON_RELEASE_LOCKED,
                                         kind=c.EVENT_WARNING).count()
    retried_auto = StoreEvent.objects.filter(message__contains="Trying again").count()
    failed_ever = (StoreEvent.objects.filter(kind=c.EVENT_STATUS, status_to=c.FAILED)
                   .exclude(reason="").count())

    times = []
    for store_id, want in t.intended.items():
        target = c.READY if want == "ready" else c.DELETED
        reached = [at for at, to in activity.get(store_id, [])
                   if to == target and at >= t.intent_at[store_id] - 0.5]
        if reached and place.get(store_id):
            times.append(max(reached) - t.intent_at[store_id])
    tc = summary(times)

    kinds = {k: sum(1 for op in ops if op.kind == k) for k in ("create", "delete", "retry")}
    n_ops = len(ops)
    rows = [
        ["operations accepted (202)",
         f"{n_ops} ({kinds['create']} creates, {kinds['delete']} deletes, "
         f"{kinds['retry']} retries)", ">= 100"],
        ["operations that met a fault", f"{faulted} ({faulted / max(n_ops, 1):.0%})",
         ">= 33%"],
        ["faults injected", f"{sum(t.injected.values())}: " + ", ".join(
            f"{k} {v}" for k, v in sorted(t.injected.items())), ""],
        ["stores", f"{len(t.intended)} ({sum(w == 'ready' for w in t.intended.values())} to "
         f"keep, {sum(w == 'deleted' for w in t.intended.values())} to delete)", ""],
        ["FAILED with a reason along the way", str(failed_ever), ""],
        ["repairs seen", f"{resumed} resumed by the reconciler (worker lost), {unlocked} "
         f"pending releases recovered, {retried_auto} transient errors retried", ""],
        ["converged", f"{converged} / {len(t.intended)}", "all"],
        ["stuck", str(len(stuck)), "0"],
        ["orphaned", str(len(orphaned)), "0"],
        ["lost", str(len(lost)), "0"],
        ["failed without a reason", str(no_reason), "0"],
        ["helm runs overlapping on one release", str(double), "0"],
        ["processes that crashed (restarted by the supervisor)", str(len(chaos.crashes)), ""],
        ["time to converge", f"median {tc['p50']:.1f} s, worst {tc['max']:.1f} s", ""],
        ["convergence phase after the last fault", f"{converge_seconds:.1f} s", ""],
    ]
    print()
    print(table(rows, ["", "figure", "target"]))
    if stuck:
        print(f"stuck: {stuck[:10]}")
    if orphaned:
        print(f"orphaned: {orphaned[:10]}")
    if lost:
        print(f"lost: {[(op.kind, op.store_id) for op in lost[:10]]}")
    for crash in chaos.crashes[:10]:
        print(f"crashed: {crash}")
    not_converged = [s for s, ok in place.items() if not ok]
    if not_converged:
        print("not converged:", [(s, statuses.get(s), t.intended[s]) for s in not_converged[:10]])
    ok = (n_ops >= 100 and faulted * 3 >= n_ops and not stuck and not orphaned and not lost
          and converged == len(t.intended) and no_reason == 0 and double == 0)
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=70, help="how long faults are injected")
    parser.add_argument("--converge", type=float, default=120,
                        help="how long to wait for convergence afterwards")
    parser.add_argument("--workers", type=int, default=3, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"seed {args.seed}; {args.workers} workers x concurrency {args.concurrency}, beat; "
          f"settings: {' '.join(f'{k}={v}' for k, v in CHAOS_ENV.items())}")
    with Stack(workers=args.workers, concurrency=args.concurrency, beat=True, web_workers=2,
               env=CHAOS_ENV) as stack:
        chaos = Chaos(stack, args.seconds, args.seed)
        done = threading.Event()
        supervisor = threading.Thread(target=chaos.supervise, args=(done,), daemon=True)
        supervisor.start()
        started = time.monotonic()
        try:
            chaos.run()
            print(f"injection phase done after {time.monotonic() - started:.0f} s; "
                  "converging...", flush=True)
            converge_started = time.monotonic()
            converged_at = chaos.converge(args.converge)
            # One more reconcile period, then count what is still busy.
            time.sleep(RECONCILE + 1)
        finally:
            done.set()
            supervisor.join(timeout=10)
        ok = report(chaos, converged_at - converge_started)
    print(f"\nresult: {'all targets met' if ok else 'TARGET MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
