"""Print what one store costs in CPU and memory, per engine chart.

Renders each chart with `helm template` (profile values plus a sample of the
values the platform generates, see docs/chart-contract.md) and prints, per
store: the summed requests and limits of every container (an init container
counts as Kubernetes counts it: a pod needs the larger of its init containers'
maximum and its app containers' sum), the chart's ResourceQuota, and how many
stores fit on a 4 vCPU / 8 GiB node by requests, naming the resource that runs
out first. Volumes are listed with the storage they claim. Then the same
store suspended (the values switch `suspended: true`, issue 13): what it
still asks for, which is nothing when the chart honours it.

    .venv/bin/python bench/footprint.py                 # every engine chart
    .venv/bin/python bench/footprint.py woocommerce medusa --profile vps
    .venv/bin/python bench/footprint.py medusa --set medusa.workerMode=split

A benchmark that prints figures, not a test: no cluster is involved, and the
node figure ignores what the node itself and the platform use.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provisioning.tests import chartkit  # noqa: E402 - needs ROOT on the path

CHARTS = chartkit.CHARTS
DEPLOY_VALUES = chartkit.DEPLOY_VALUES
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

def mib(value: int) -> str:
    return f"{value / 2**20:.0f}Mi"


@dataclass
class Amount:
    cpu: int = 0  # millicores
    memory: int = 0  # bytes

    def __add__(self, other: Amount) -> Amount:
        return Amount(self.cpu + other.cpu, self.memory + other.memory)

    def __str__(self) -> str:
        return f"{self.cpu}m CPU, {mib(self.memory)} memory"


def pod_amount(spec: dict, kind: str, pods: int) -> Amount:
    """What the scheduler reserves for ``pods`` such pods (no pod overhead);
    the Kubernetes rule is chartkit's, shared with the chart tests."""
    cpu, memory = chartkit.pod_requests(spec, kind)
    return Amount(cpu * pods, memory * pods)


def render(chart: str, profile: str, set_values: dict | None = None) -> list[dict]:
    profile_values = DEPLOY_VALUES / f"{chart}-{profile}.yaml"
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as sample:
        yaml.safe_dump(SAMPLE_STORE_VALUES, sample)
        sample.flush()
        files = [profile_values] if profile_values.exists() else []
        try:
            return chartkit.render(chart, [*files, sample.name], set_values,
                                   release="store-bench00001", namespace="store-bench00001")
        except AssertionError as exc:
            raise SystemExit(str(exc)) from exc


def fit(per_store: Amount) -> str:
    by_cpu = math.floor(NODE_CPU_M / per_store.cpu) if per_store.cpu else math.inf
    by_memory = math.floor(NODE_MEMORY / per_store.memory) if per_store.memory else math.inf
    stores = min(by_cpu, by_memory)
    binding = "memory" if by_memory < by_cpu else "CPU" if by_cpu < by_memory else "CPU and memory"
    return f"{stores} stores ({binding} binds: {by_cpu} by CPU, {by_memory} by memory)"


def claimed_storage(docs: list[dict]) -> list[tuple[str, int]]:
    """(name, bytes) of every PersistentVolumeClaim, StatefulSet templates included."""
    claims = []
    for doc in docs:
        if doc.get("kind") == "PersistentVolumeClaim":
            claims.append((doc["metadata"]["name"], doc["spec"]))
        elif doc.get("kind") == "StatefulSet":
            for template in doc["spec"].get("volumeClaimTemplates", []):
                name = f"{template['metadata']['name']}-{doc['metadata']['name']}-0"
                claims.append((name, template["spec"]))
    return [
        (name, chartkit.parse_memory(spec["resources"]["requests"]["storage"]))
        for name, spec in claims
    ]


def report(chart: str, profile: str, set_values: dict | None = None) -> None:
    docs = render(chart, profile, set_values)
    settings = "".join(f", {key}={value}" for key, value in (set_values or {}).items())
    print(f"== {chart} (profile {profile}{settings}) ==")
    total_requests, total_limits, steady = Amount(), Amount(), Amount()
    for kind, name, pods, spec in chartkit.workloads(docs):
        requests = pod_amount(spec, "requests", pods)
        limits = pod_amount(spec, "limits", pods)
        total_requests += requests
        total_limits += limits
        if kind not in {"Job", "CronJob"}:
            steady += requests
        print(f"  {kind}/{name} x{pods}: requests {requests}; limits {limits}")
    print(f"  per store, all containers: requests {total_requests}; limits {total_limits}")
    print(f"  per store, once setup jobs finished: requests {steady}")
    claims = claimed_storage(docs)
    if claims:
        listed = ", ".join(f"{name} {mib(size)}" for name, size in claims)
        total = sum(size for _, size in claims)
        print(f"  storage: {mib(total)} in {len(claims)} volumes ({listed})")
    quotas = [d for d in docs if d.get("kind") == "ResourceQuota"]
    for quota in quotas:
        hard = ", ".join(f"{k}={v}" for k, v in sorted(quota["spec"]["hard"].items()))
        print(f"  ResourceQuota {quota['metadata']['name']}: {hard}")
    if not quotas:
        print("  ResourceQuota: none")
    print(f"  fit on a 4 vCPU / 8 GiB node, by requests: {fit(total_requests)}")
    if steady != total_requests:
        print(f"  ... counting only long-running pods: {fit(steady)}")
    report_suspended(chart, profile)
    print()


def report_suspended(chart: str, profile: str) -> None:
    """What the store asks for while suspended (issue 13)."""
    requests, limits, pods = Amount(), Amount(), 0
    for _, _, count, spec in chartkit.workloads(render(chart, profile, {"suspended": True})):
        requests += pod_amount(spec, "requests", count)
        limits += pod_amount(spec, "limits", count)
        pods += count
    print(f"  suspended: requests {requests}; limits {limits}; {pods} pods")


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
    parser.add_argument(
        "--set", dest="set_values", action="append", default=[], metavar="KEY=VALUE",
        help="a chart value on top of the profile (helm --set), e.g. medusa.workerMode=split",
    )
    args = parser.parse_args(argv)
    set_values = dict(item.split("=", 1) for item in args.set_values)
    charts = args.charts or default_charts()
    if not charts:
        print("no chart with a deploy/values/<chart>-local.yaml profile found", file=sys.stderr)
        return 1
    for chart in charts:
        report(chart, args.profile, set_values)
    return 0


if __name__ == "__main__":
    sys.exit(main())
