"""Print what one store costs in CPU and memory, per engine chart.

Renders each chart with `helm template` (profile values plus a sample of the
values the platform generates, see docs/chart-contract.md) and prints, per
store: the summed requests and limits of every container (an init container
counts as Kubernetes counts it: a pod needs the larger of its init containers'
maximum and its app containers' sum), the chart's ResourceQuota, and how many
stores fit on a 4 vCPU / 8 GiB node by requests, naming the resource that runs
out first.

    .venv/bin/python bench/footprint.py                 # every engine chart
    .venv/bin/python bench/footprint.py woocommerce medusa --profile vps

A benchmark that prints figures, not a test: no cluster is involved, and the
node figure ignores what the node itself and the platform use.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CHARTS = ROOT / "charts"
DEPLOY_VALUES = ROOT / "deploy" / "values"
NODE_CPU_M = 4000
NODE_MEMORY = 8 * 2**30

# The shape every engine chart accepts (docs/chart-contract.md).
SAMPLE_STORE_VALUES = {
    "store": {
        "id": "bench00001",
        "name": "Footprint Bench",
        "host": "footprint-bench.localtest.me",
        "scheme": "http",
    },
    "existingSecret": "store-credentials",
    "ingress": {
        "className": "traefik",
        "tls": {"enabled": False, "clusterIssuer": "", "secretName": ""},
    },
}

_MEMORY_UNITS = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "k": 10**3,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
}


def cpu_millis(value) -> int:
    text = str(value)
    if text.endswith("m"):
        return int(text[:-1])
    return round(float(text) * 1000)


def memory_bytes(value) -> int:
    text = str(value)
    for suffix in sorted(_MEMORY_UNITS, key=len, reverse=True):
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * _MEMORY_UNITS[suffix])
    return int(float(text))


def mib(value: int) -> str:
    return f"{value / 2**20:.0f}Mi"


@dataclass
class Amount:
    cpu: int = 0  # millicores
    memory: int = 0  # bytes

    def __add__(self, other: Amount) -> Amount:
        return Amount(self.cpu + other.cpu, self.memory + other.memory)

    def __mul__(self, times: int) -> Amount:
        return Amount(self.cpu * times, self.memory * times)

    def max(self, other: Amount) -> Amount:
        return Amount(max(self.cpu, other.cpu), max(self.memory, other.memory))

    def __str__(self) -> str:
        return f"{self.cpu}m CPU, {mib(self.memory)} memory"


def container_amount(container: dict, kind: str) -> Amount:
    values = (container.get("resources") or {}).get(kind) or {}
    return Amount(cpu_millis(values.get("cpu", 0)), memory_bytes(values.get("memory", 0)))


def pod_amount(spec: dict, kind: str) -> Amount:
    """What the scheduler reserves for one pod (without pod overhead)."""
    app = Amount()
    for container in spec.get("containers", []):
        app = app + container_amount(container, kind)
    init = Amount()
    for container in spec.get("initContainers", []):
        if container.get("restartPolicy") == "Always":  # native sidecar: runs alongside
            app = app + container_amount(container, kind)
        else:
            init = init.max(container_amount(container, kind))
    return app.max(init)


def workloads(docs: list[dict]):
    """Yield (kind, name, pods, pod spec) for each workload."""
    for doc in docs:
        kind = doc.get("kind")
        spec = doc.get("spec") or {}
        if kind in {"Deployment", "StatefulSet", "ReplicaSet"}:
            yield kind, doc["metadata"]["name"], spec.get("replicas", 1), spec["template"]["spec"]
        elif kind == "Job":
            yield (
                kind,
                doc["metadata"]["name"],
                spec.get("parallelism", 1),
                spec["template"]["spec"],
            )
        elif kind == "CronJob":
            job = spec["jobTemplate"]["spec"]
            yield kind, doc["metadata"]["name"], job.get("parallelism", 1), job["template"]["spec"]
        elif kind == "Pod":
            yield kind, doc["metadata"]["name"], 1, spec


def helm_bin() -> str:
    configured = os.environ.get("HELM_BIN")
    if configured:
        return configured
    bundled = ROOT / ".tools" / "bin" / "helm"
    return str(bundled) if bundled.exists() else (shutil.which("helm") or "helm")


def render(chart: str, profile: str) -> list[dict]:
    profile_values = DEPLOY_VALUES / f"{chart}-{profile}.yaml"
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as sample:
        yaml.safe_dump(SAMPLE_STORE_VALUES, sample)
        sample.flush()
        args = [
            helm_bin(),
            "template",
            "store-bench00001",
            str(CHARTS / chart),
            "--namespace",
            "store-bench00001",
        ]
        if profile_values.exists():
            args += ["-f", str(profile_values)]
        args += ["-f", sample.name]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise SystemExit(f"helm template {chart} failed:\n{proc.stderr}")
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def fit(per_store: Amount) -> str:
    by_cpu = math.floor(NODE_CPU_M / per_store.cpu) if per_store.cpu else math.inf
    by_memory = math.floor(NODE_MEMORY / per_store.memory) if per_store.memory else math.inf
    stores = min(by_cpu, by_memory)
    binding = "memory" if by_memory < by_cpu else "CPU" if by_cpu < by_memory else "CPU and memory"
    return f"{stores} stores ({binding} binds: {by_cpu} by CPU, {by_memory} by memory)"


def report(chart: str, profile: str) -> None:
    docs = render(chart, profile)
    print(f"== {chart} (profile {profile}) ==")
    total_requests, total_limits, steady = Amount(), Amount(), Amount()
    for kind, name, pods, spec in workloads(docs):
        requests = pod_amount(spec, "requests") * pods
        limits = pod_amount(spec, "limits") * pods
        total_requests += requests
        total_limits += limits
        if kind not in {"Job", "CronJob"}:
            steady += requests
        print(f"  {kind}/{name} x{pods}: requests {requests}; limits {limits}")
    print(f"  per store, all containers: requests {total_requests}; limits {total_limits}")
    print(f"  per store, once setup jobs finished: requests {steady}")
    quotas = [d for d in docs if d.get("kind") == "ResourceQuota"]
    for quota in quotas:
        hard = ", ".join(f"{k}={v}" for k, v in sorted(quota["spec"]["hard"].items()))
        print(f"  ResourceQuota {quota['metadata']['name']}: {hard}")
    if not quotas:
        print("  ResourceQuota: none")
    print(f"  fit on a 4 vCPU / 8 GiB node, by requests: {fit(total_requests)}")
    if steady != total_requests:
        print(f"  ... counting only long-running pods: {fit(steady)}")
    print()


def is_engine_chart(chart: Path) -> bool:
    """An engine chart has a -local profile and takes the generated store values."""
    if not (chart / "Chart.yaml").exists():
        return False
    if not (DEPLOY_VALUES / f"{chart.name}-local.yaml").exists():
        return False
    schema = chart / "values.schema.json"
    if not schema.exists():
        return True
    return "store" in (json.loads(schema.read_text()).get("properties") or {})


def default_charts() -> list[str]:
    if not CHARTS.exists():
        return []
    return sorted(chart.name for chart in CHARTS.iterdir() if is_engine_chart(chart))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "charts", nargs="*", help="chart names under charts/ (default: all engines)"
    )
    parser.add_argument("--profile", default="local", choices=["local", "vps"])
    args = parser.parse_args(argv)
    charts = args.charts or default_charts()
    if not charts:
        print("no chart with a deploy/values/<chart>-local.yaml profile found", file=sys.stderr)
        return 1
    for chart in charts:
        report(chart, args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
