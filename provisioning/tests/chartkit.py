"""Offline chart checks shared by the chart test files.

Everything here drives the real helm binary (``helm lint``/``helm template``)
and validates what it renders with the Kubernetes JSON schemas bundled in
``kubernetes-validate``. No cluster is needed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHARTS = ROOT / "charts"
DEPLOY_VALUES = ROOT / "deploy" / "values"

# The oldest Kubernetes we support and the newest schema bundle we have.
K8S_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())

POD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}


def helm_bin() -> str:
    bundled = ROOT / ".tools" / "bin" / "helm"
    return os.environ.get("HELM_BIN") or (
        str(bundled) if bundled.exists() else (shutil.which("helm") or "helm")
    )


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [helm_bin(), *args], capture_output=True, text=True, timeout=120
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{proc.stderr}")
    return proc


def _value_args(values_files=(), set_values: dict | None = None) -> list[str]:
    args: list[str] = []
    for path in values_files:
        args += ["-f", str(path)]
    for key, value in (set_values or {}).items():
        args += ["--set-string" if isinstance(value, str) else "--set", f"{key}={value}"]
    return args


def render(
    chart: str,
    values_files=(),
    set_values: dict | None = None,
    release: str = "store-test",
    namespace: str = "store-test",
) -> list[dict]:
    """``helm template`` a chart and return its documents as dicts."""
    proc = helm(
        "template", release, str(CHARTS / chart), "--namespace", namespace,
        *_value_args(values_files, set_values),
    )
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def render_error(chart: str, values_files=(), set_values: dict | None = None) -> str:
    """Render a chart that must fail and return helm's error text."""
    proc = helm(
        "template", "store-test", str(CHARTS / chart),
        *_value_args(values_files, set_values), check=False,
    )
    assert proc.returncode != 0, "helm template accepted values it should reject"
    return proc.stderr


def lint(chart: str, values_files=(), set_values: dict | None = None) -> None:
    helm("lint", "--strict", str(CHARTS / chart), *_value_args(values_files, set_values))


# Custom resources the store charts render, which kubernetes-validate has no
# schema for: the part of their CRD schema the charts use, closed to typos.
# From traefik's CRD (traefik.io_middlewares.yaml, traefik v3).
_STRING = {"type": "string"}
_BOOL = {"type": "boolean"}
CRD_SCHEMAS = {
    ("traefik.io/v1alpha1", "Middleware"): {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "metadata": {"type": "object", "required": ["name"]},
            "spec": {
                "type": "object", "additionalProperties": False, "minProperties": 1,
                "properties": {
                    "redirectScheme": {"type": "object", "additionalProperties": False,
                                       "properties": {"scheme": _STRING, "port": _STRING,
                                                      "permanent": _BOOL}},
                    "redirectRegex": {"type": "object", "additionalProperties": False,
                                      "required": ["regex", "replacement"],
                                      "properties": {"regex": _STRING, "replacement": _STRING,
                                                     "permanent": _BOOL}},
                    "headers": {"type": "object", "additionalProperties": False,
                                "properties": {"stsSeconds": {"type": "integer"},
                                               "stsIncludeSubdomains": _BOOL,
                                               "stsPreload": _BOOL, "forceSTSHeader": _BOOL}},
                },
            },
        },
    },
}


def validate(docs: list[dict], version: str) -> None:
    """Validate every document against the Kubernetes schema of ``version``
    (custom resources against CRD_SCHEMAS)."""
    for doc in docs:
        crd = CRD_SCHEMAS.get((doc.get("apiVersion"), doc.get("kind")))
        if crd is not None:
            try:
                jsonschema.validate(doc, crd)
            except jsonschema.ValidationError as exc:
                name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
                raise AssertionError(f"{name} is invalid: {exc.message}") from exc
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
            raise AssertionError(f"{name} is invalid for {version}: {exc.message}") from exc


def of_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d.get("kind") == kind]


def pod_specs(docs: list[dict]) -> Iterator[tuple[str, dict]]:
    """Yield (owner name, pod spec) for every workload in the rendered docs."""
    for doc in docs:
        if doc.get("kind") in POD_KINDS:
            yield doc["metadata"]["name"], doc["spec"]["template"]["spec"]
        elif doc.get("kind") == "CronJob":
            yield doc["metadata"]["name"], doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        elif doc.get("kind") == "Pod":
            yield doc["metadata"]["name"], doc["spec"]


def containers(docs: list[dict]) -> Iterator[tuple[str, dict]]:
    """Yield (owner/container name, container) for every container and init container."""
    for owner, spec in pod_specs(docs):
        for container in spec.get("initContainers", []) + spec.get("containers", []):
            yield f"{owner}/{container['name']}", container


def parse_cpu(value: str | int | float) -> int:
    """CPU quantity in millicores."""
    value = str(value)
    if value.endswith("m"):
        return int(value[:-1])
    return int(float(value) * 1000)


_MEMORY_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
                 "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def parse_memory(value: str | int) -> int:
    """Memory quantity in bytes."""
    value = str(value)
    for suffix, factor in _MEMORY_UNITS.items():  # two-letter suffixes first
        if value.endswith(suffix):
            return int(float(value[: -len(suffix)]) * factor)
    return int(float(value))


def pod_requests(spec: dict, kind: str = "requests") -> tuple[int, int]:
    """(millicores, bytes) the scheduler and the quota count for one pod:
    the larger of its biggest init container and the sum of its app
    containers (native sidecars, restartPolicy Always, run alongside)."""

    def amount(container: dict) -> tuple[int, int]:
        values = (container.get("resources") or {}).get(kind) or {}
        return parse_cpu(values.get("cpu", 0)), parse_memory(values.get("memory", 0))

    app_cpu = app_memory = init_cpu = init_memory = 0
    for container in spec.get("containers", []):
        cpu, memory = amount(container)
        app_cpu, app_memory = app_cpu + cpu, app_memory + memory
    for container in spec.get("initContainers", []):
        cpu, memory = amount(container)
        if container.get("restartPolicy") == "Always":
            app_cpu, app_memory = app_cpu + cpu, app_memory + memory
        else:
            init_cpu, init_memory = max(init_cpu, cpu), max(init_memory, memory)
    return max(app_cpu, init_cpu), max(app_memory, init_memory)


def workloads(docs: list[dict]) -> Iterator[tuple[str, str, int, dict]]:
    """Yield (kind, name, pods, pod spec) for every workload."""
    for doc in docs:
        kind, spec = doc.get("kind"), doc.get("spec") or {}
        if kind in {"Deployment", "StatefulSet", "ReplicaSet"}:
            yield kind, doc["metadata"]["name"], spec.get("replicas", 1), spec["template"]["spec"]
        elif kind == "Job":
            yield kind, doc["metadata"]["name"], spec.get("parallelism", 1), spec["template"][
                "spec"]
        elif kind == "CronJob":
            job = spec["jobTemplate"]["spec"]
            # A suspended CronJob starts no Jobs, so it runs no pods.
            pods = 0 if spec.get("suspend") else job.get("parallelism", 1)
            yield kind, doc["metadata"]["name"], pods, job["template"]["spec"]
        elif kind == "Pod":
            yield kind, doc["metadata"]["name"], 1, spec


def store_requests(docs: list[dict], kind: str = "requests") -> tuple[int, int]:
    """(millicores, bytes) of requests (or limits) of every pod a store runs."""
    cpu = memory = 0
    for _, _, pods, spec in workloads(docs):
        pod_cpu, pod_memory = pod_requests(spec, kind)
        cpu, memory = cpu + pods * pod_cpu, memory + pods * pod_memory
    return cpu, memory


# --- what a container sees ------------------------------------------------------
# Kubernetes expands $(VAR) references in env values (and command/args) before
# the container starts. The rules below are the kubelet's, transcribed from
# k8s.io/kubernetes third_party/forked/golang/expansion/expand.go: `$$` is an
# escaped `$`; `$(NAME)` becomes NAME's value when NAME is defined earlier in
# the list (or elsewhere in the mapping), and stays as written otherwise; any
# other `$` is kept.


def kubelet_expand(value: str, defined: dict[str, str]) -> str:
    out: list[str] = []
    checkpoint = cursor = 0
    while cursor < len(value):
        if value[cursor] == "$" and cursor + 1 < len(value):
            out.append(value[checkpoint:cursor])
            rest = value[cursor + 1 :]
            if rest[0] == "$":
                out.append("$")
                advance = 1
            elif rest[0] == "(":
                closing = rest.find(")", 1)
                if closing == -1:
                    out.append("$(")
                    advance = 1
                else:
                    name = rest[1:closing]
                    out.append(defined.get(name, f"$({name})"))
                    advance = closing + 1
            else:
                out.append("$" + rest[0])
                advance = 1
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    out.append(value[checkpoint:])
    return "".join(out)


def container_env(container: dict, secrets: dict[str, dict[str, str]]) -> dict[str, str]:
    """The environment a container starts with: ``secretKeyRef`` values read
    from ``secrets`` (Secret name -> key -> value), literal values expanded by
    :func:`kubelet_expand` against the variables defined before them."""
    env: dict[str, str] = {}
    for item in container.get("env", []):
        if "valueFrom" in item:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = secrets[ref["name"]][ref["key"]]
        else:
            env[item["name"]] = kubelet_expand(item.get("value", ""), env)
    return env
