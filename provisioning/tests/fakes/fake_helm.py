"""A fault-injectable stand-in for the helm executable.

It is a real process with helm's command line, exit codes, error wording and
``-o json`` shapes (checked against real helm 4's ``--dry-run=client -o json``
in provisioning/tests/test_helm_driver.py). What a cluster would do is done against the fake API
server named by KUBECONFIG:

- charts are rendered by the REAL helm binary (``FAKE_HELM_REAL_BIN``), so a
  chart or values error fails exactly as it would for real;
- releases are stored where helm 4 stores them, as Secrets
  ``sh.helm.release.v1.<name>.v<revision>`` labelled owner=helm, in the
  release namespace (the payload is plain base64 JSON rather than helm's
  gzip, which only helm itself reads);
- rendered objects are created in the fake API, so an Ingress makes the fake
  ingress answer for its host, and uninstall or namespace deletion removes them.

Faults come from the JSON file named by FAKE_HELM_FAULTS, a list of rules:

    {"command": "upgrade", "release": "store-abc" | "*", "times": 1,
     "action": "fail" | "hang" | "sleep" | "pending" | "quota",
     "stderr": "...", "exit": 1, "seconds": 2}

- fail: exit with ``stderr`` after storing a failed revision
- hang: wait until --timeout (or SIGTERM) as if pods never became ready
- sleep: take ``seconds`` longer, then succeed
- pending: die as if SIGKILLed mid-install, leaving the release pending-*
- quota: emit the quota-rejection event real Kubernetes emits, then hang

FAKE_HELM_DELAY adds seconds to every install/upgrade (the time pods take);
FAKE_HELM_DELAY_INSTALL and FAKE_HELM_DELAY_UPGRADE, when set, replace it for a
first install and for an upgrade of a deployed release (bench/pool.py models a
cold install against an upgrade of a running store with them);
FAKE_HELM_LOG appends one JSON line per command with start and end times.

Two opt-in switches for the benchmarks (bench/), off unless set:

- FAKE_HELM_RENDER=0 skips rendering with the real helm (a few hundred
  milliseconds per call): install/upgrade then creates only an Ingress for
  ``store.host`` from the values files, so the storefront probe still
  answers, and the release is stored as usual. Charts are not checked.
- FAKE_HELM_SPAWNED (a Unix time, set by a wrapper just before it execs this
  script) is copied into the log line as ``spawned``, so the interpreter's
  start-up can be told apart from the command itself.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import yaml

CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
}
RESOURCES = {
    "Secret": "api/v1/namespaces/{ns}/secrets",
    "ConfigMap": "api/v1/namespaces/{ns}/configmaps",
    "Service": "api/v1/namespaces/{ns}/services",
    "ServiceAccount": "api/v1/namespaces/{ns}/serviceaccounts",
    "PersistentVolumeClaim": "api/v1/namespaces/{ns}/persistentvolumeclaims",
    "ResourceQuota": "api/v1/namespaces/{ns}/resourcequotas",
    "LimitRange": "api/v1/namespaces/{ns}/limitranges",
    "Pod": "api/v1/namespaces/{ns}/pods",
    "Deployment": "apis/apps/v1/namespaces/{ns}/deployments",
    "StatefulSet": "apis/apps/v1/namespaces/{ns}/statefulsets",
    "Job": "apis/batch/v1/namespaces/{ns}/jobs",
    "CronJob": "apis/batch/v1/namespaces/{ns}/cronjobs",
    "Ingress": "apis/networking.k8s.io/v1/namespaces/{ns}/ingresses",
    "NetworkPolicy": "apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies",
    "HorizontalPodAutoscaler": "apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers",
    "PodDisruptionBudget": "apis/policy/v1/namespaces/{ns}/poddisruptionbudgets",
    "Role": "apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
    "RoleBinding": "apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
    "Middleware": "apis/traefik.io/v1alpha1/namespaces/{ns}/middlewares",
}


class HelmExit(Exception):
    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.message = message
        self.code = code


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- command line -------------------------------------------------------------
def parse(argv: list[str]) -> tuple[list[str], dict]:
    """Positional args and flags, the way helm (cobra) reads them."""
    takes_value = {
        "--namespace",
        "-n",
        "--timeout",
        "--history-max",
        "-o",
        "--output",
        "-f",
        "--values",
        "--set",
        "--set-string",
        "--kube-context",
        "--wait",
        "--max",
    }
    positional, flags = [], {"values": []}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("-"):
            name, _, inline = arg.partition("=")
            if name in ("-f", "--values"):
                flags["values"].append(inline or argv[i + 1])
                i += 1 if inline else 2
                continue
            if name == "--wait" and not inline:
                flags["wait"] = "watcher"
            elif name in takes_value and name != "--wait":
                flags[name.lstrip("-")] = inline or argv[i + 1]
                i += 1 if inline else 2
                continue
            else:
                flags[name.lstrip("-")] = inline or True
        else:
            positional.append(arg)
        i += 1
    if "n" in flags:
        flags["namespace"] = flags.pop("n")
    if "o" in flags:
        flags["output"] = flags.pop("o")
    flags.setdefault("namespace", "default")
    return positional, flags


def timeout_seconds(flags: dict) -> float:
    value = str(flags.get("timeout", "5m0s"))
    total, number = 0.0, ""
    for ch in value:
        if ch.isdigit() or ch == ".":
            number += ch
        else:
            total += float(number or 0) * {"h": 3600, "m": 60, "s": 1}[ch]
            number = ""
    return total + float(number or 0)


# -- the cluster ----------------------------------------------------------------
class Kube:
    def __init__(self):
        path = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
        try:
            config = yaml.safe_load(Path(path).read_text())
        except OSError as exc:
            raise HelmExit(
                'kubernetes cluster unreachable: Get "http://localhost:8080/version"'
                ": dial tcp [::1]:8080: connect: connection refused"
            ) from exc
        current = config["current-context"]
        context = next(c["context"] for c in config["contexts"] if c["name"] == current)
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
        self.server = cluster["server"].rstrip("/")

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"{self.server}/{path.lstrip('/')}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            payload = json.loads(exc.read() or b"{}")
            if exc.code == 429:
                raise HelmExit(
                    "the server has received too many requests and has asked us to try again later"
                ) from exc
            return exc.code, payload
        except (urllib.error.URLError, OSError) as exc:
            hostport = self.server.split("://", 1)[1]
            raise HelmExit(
                f'kubernetes cluster unreachable: Get "{self.server}/version": '
                f"dial tcp {hostport}: connect: connection refused"
            ) from exc

    def reachable(self) -> None:
        self.request("GET", "/version")

    def namespace_exists(self, namespace: str) -> bool:
        code, _ = self.request("GET", f"api/v1/namespaces/{namespace}")
        return code == 200

    def releases(self, namespace: str, name: str) -> list[dict]:
        selector = f"owner%3Dhelm%2Cname%3D{name}"
        code, body = self.request(
            "GET", f"api/v1/namespaces/{namespace}/secrets?labelSelector={selector}"
        )
        if code != 200:
            return []
        releases = [json.loads(base64.b64decode(s["data"]["release"])) for s in body["items"]]
        return sorted(releases, key=lambda r: r["version"])

    def all_releases(self) -> list[dict]:
        code, body = self.request("GET", "api/v1/secrets?labelSelector=owner%3Dhelm")
        if code != 200:
            return []
        return [json.loads(base64.b64decode(s["data"]["release"])) for s in body["items"]]

    def save_release(self, release: dict) -> None:
        name = f"sh.helm.release.v1.{release['name']}.v{release['version']}"
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "helm.sh/release.v1",
            "metadata": {
                "name": name,
                "labels": {
                    "name": release["name"],
                    "owner": "helm",
                    "status": release["info"]["status"],
                    "version": str(release["version"]),
                },
            },
            "data": {"release": base64.b64encode(json.dumps(release).encode()).decode()},
        }
        path = f"api/v1/namespaces/{release['namespace']}/secrets"
        code, body = self.request("POST", path, secret)
        if code == 409:
            code, body = self.request("PUT", f"{path}/{name}", secret)
        if code >= 400:
            raise HelmExit(f"create: failed to create: {body.get('message', code)}")

    def delete_release(self, release: dict) -> None:
        name = f"sh.helm.release.v1.{release['name']}.v{release['version']}"
        self.request("DELETE", f"api/v1/namespaces/{release['namespace']}/secrets/{name}")

    def apply(self, namespace: str, docs: list[dict]) -> None:
        for doc in docs:
            kind = doc.get("kind")
            if kind in CLUSTER_SCOPED or kind not in RESOURCES:
                continue
            path = RESOURCES[kind].format(ns=namespace)
            code, body = self.request("POST", path, doc)
            if code == 409:
                code, body = self.request("PUT", f"{path}/{doc['metadata']['name']}", doc)
            if code >= 400:
                raise HelmExit(f"failed to create resource: {body.get('message', code)}")

    def remove(self, namespace: str, docs: list[dict]) -> None:
        for doc in docs:
            kind = doc.get("kind")
            if kind in RESOURCES:
                path = RESOURCES[kind].format(ns=namespace)
                self.request("DELETE", f"{path}/{doc['metadata']['name']}")

    def warning_event(self, namespace: str, message: str) -> None:
        self.request(
            "POST",
            f"api/v1/namespaces/{namespace}/events",
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"generateName": "quota-"},
                "type": "Warning",
                "reason": "FailedCreate",
                "message": message,
                "count": 1,
                "lastTimestamp": now(),
                "involvedObject": {"kind": "ReplicaSet", "name": "web", "namespace": namespace},
            },
        )


# -- faults ---------------------------------------------------------------------
def take_fault(command: str, release: str) -> dict | None:
    path = os.environ.get("FAKE_HELM_FAULTS")
    if not path or not Path(path).exists():
        return None
    with open(path, "r+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        rules = json.loads(handle.read() or "[]")
        for rule in rules:
            if rule.get("command", command) != command:
                continue
            if rule.get("release", "*") not in ("*", release):
                continue
            if rule.get("times", 1) == 0:
                continue
            if rule.get("times", 1) > 0:
                rule["times"] = rule.get("times", 1) - 1
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps(rules))
            return rule
    return None


# -- helm commands --------------------------------------------------------------
def real_helm(*args: str) -> subprocess.CompletedProcess:
    real = os.environ.get("FAKE_HELM_REAL_BIN", "helm")
    return subprocess.run([real, *args], capture_output=True, text=True)


def render(name: str, chart: str, flags: dict) -> list[dict]:
    if os.environ.get("FAKE_HELM_RENDER", "1") == "0":
        return minimal_objects(name, flags)
    args = ["template", name, chart, "--namespace", flags["namespace"]]
    for values in flags["values"]:
        args += ["-f", values]
    proc = real_helm(*args)
    if proc.returncode != 0:
        raise HelmExit(proc.stderr.strip().removeprefix("Error: "))
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def minimal_objects(name: str, flags: dict) -> list[dict]:
    """FAKE_HELM_RENDER=0: just the Ingress the storefront probe needs."""
    values: dict = {}
    for path in flags["values"]:
        values.update(yaml.safe_load(Path(path).read_text()) or {})
    host = (values.get("store") or {}).get("host", "")
    backend = {"service": {"name": name, "port": {"number": 80}}}
    return [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/instance": name}},
            "spec": {
                "rules": [
                    {
                        "host": host,
                        "http": {
                            "paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]
                        },
                    }
                ]
            },
        }
    ]


def chart_metadata(chart: str) -> dict:
    """Chart.yaml as helm reports it in ``chart.metadata``."""
    meta = yaml.safe_load((Path(chart) / "Chart.yaml").read_text())
    meta.pop("dependencies", None)
    return meta


def release_json(release: dict) -> dict:
    """The shape of ``helm ... -o json`` (see the module docstring)."""
    return {
        k: release[k]
        for k in ("name", "info", "chart", "manifest", "version", "namespace", "apply_method")
    }


def print_release(release: dict, flags: dict) -> None:
    if flags.get("output") == "json":
        print(json.dumps(release_json(release)))
        return
    info = release["info"]
    print(
        f"NAME: {release['name']}\nLAST DEPLOYED: {info['last_deployed']}\n"
        f"NAMESPACE: {release['namespace']}\nSTATUS: {info['status']}\n"
        f"REVISION: {release['version']}\nDESCRIPTION: {info['description']}\n"
        "TEST SUITE: None"
    )


def cmd_upgrade(positional: list[str], flags: dict) -> int:
    name, chart = positional[0], positional[1]
    namespace = flags["namespace"]
    kube = Kube()
    kube.reachable()
    docs = render(name, chart, flags)
    if not kube.namespace_exists(namespace):
        raise HelmExit(f'create: failed to create: namespaces "{namespace}" not found')
    history = kube.releases(namespace, name)
    installing = not history or all(r["info"]["status"] == "uninstalled" for r in history)
    verb = "INSTALLATION" if installing else "UPGRADE"
    if history and history[-1]["info"]["status"].startswith("pending-"):
        raise HelmExit(
            f"{verb} FAILED: another operation (install/upgrade/rollback) is in progress"
        )
    stamp = now()
    release = {
        "name": name,
        "namespace": namespace,
        "version": (history[-1]["version"] + 1) if history else 1,
        "info": {
            "first_deployed": history[0]["info"]["first_deployed"] if history else stamp,
            "last_deployed": stamp,
            "description": "Preparing",
            "status": "pending-install" if installing else "pending-upgrade",
            "notes": "",
        },
        "chart": {"metadata": chart_metadata(chart)},
        "manifest": yaml.safe_dump_all(docs),
        "apply_method": "ssa",
    }
    kube.save_release(release)

    def fail(message: str) -> None:
        release["info"].update(status="failed", description=f'Release "{name}" failed: {message}')
        kube.save_release(release)
        raise HelmExit(f"{verb} FAILED: {message}")

    def on_term(signum, frame):
        fail("context canceled")

    # From here on a SIGTERM marks the release failed, as helm does when its
    # context is canceled; a SIGKILL leaves it pending.
    signal.signal(signal.SIGTERM, on_term)
    fault = take_fault("upgrade", name)
    if fault and fault.get("action") == "pending":
        os.kill(os.getpid(), signal.SIGKILL)  # as if the process was killed mid-install
    kube.apply(namespace, docs)
    if history and not installing:
        old = list(yaml.safe_load_all(history[-1]["manifest"]))
        new_keys = {(d["kind"], d["metadata"]["name"]) for d in docs}
        kube.remove(
            namespace, [d for d in old if d and (d["kind"], d["metadata"]["name"]) not in new_keys]
        )

    wait(fault, flags, kube, namespace, fail, installing=installing)
    release["info"].update(
        status="deployed", description="Install complete" if installing else "Upgrade complete"
    )
    kube.save_release(release)
    for old in history:
        if old["info"]["status"] == "deployed":
            old["info"]["status"] = "superseded"
            kube.save_release(old)
    keep = int(flags.get("history-max", 10))
    if keep:
        for old in [*history, release][:-keep]:
            kube.delete_release(old)
    print_release(release, flags)
    return 0


def wait(fault: dict | None, flags: dict, kube: Kube, namespace: str, fail,
         installing: bool = False) -> None:
    """What --wait does: here, the time pods take, or a fault."""
    delay = os.environ.get("FAKE_HELM_DELAY", "0")
    delay = os.environ.get("FAKE_HELM_DELAY_INSTALL" if installing else "FAKE_HELM_DELAY_UPGRADE",
                           delay)
    time.sleep(float(delay))
    if not fault:
        return
    action = fault.get("action")
    if action == "sleep":
        time.sleep(float(fault.get("seconds", 1)))
    elif action == "fail":
        fail(fault.get("stderr", "failed"))
    elif action in ("hang", "quota"):
        if action == "quota":
            kube.warning_event(
                namespace,
                fault.get("stderr")
                or (
                    'Error creating: pods "web-7d4b9c-x2x" is forbidden: exceeded quota: '
                    "store-quota, requested: limits.memory=2Gi, used: limits.memory=1Gi, "
                    "limited: limits.memory=2Gi"
                ),
            )
        time.sleep(timeout_seconds(flags))
        fail(
            "resource not ready, name: web, kind: Deployment, status: InProgress\n"
            "context deadline exceeded"
        )


def cmd_uninstall(positional: list[str], flags: dict) -> int:
    name, namespace = positional[0], flags["namespace"]
    kube = Kube()
    kube.reachable()
    history = kube.releases(namespace, name)
    if not history:
        raise HelmExit(f"uninstall: Release not loaded: {name}: release: not found")
    fault = take_fault("uninstall", name)
    if fault and fault.get("action") == "fail":
        raise HelmExit(fault.get("stderr", "uninstall failed"))
    if fault and fault.get("action") == "hang":
        time.sleep(timeout_seconds(flags))
        raise HelmExit("uninstallation completed with 1 error(s): context deadline exceeded")
    kube.remove(namespace, [d for d in yaml.safe_load_all(history[-1]["manifest"]) if d])
    for release in history:
        kube.delete_release(release)
    print(f'release "{name}" uninstalled')
    return 0


def cmd_status(positional: list[str], flags: dict) -> int:
    kube = Kube()
    kube.reachable()
    history = kube.releases(flags["namespace"], positional[0])
    if not history:
        raise HelmExit("release: not found")
    print_release(history[-1], flags)
    return 0


def cmd_history(positional: list[str], flags: dict) -> int:
    kube = Kube()
    kube.reachable()
    history = kube.releases(flags["namespace"], positional[0])
    if not history:
        raise HelmExit("release: not found")
    rows = [
        {
            "revision": r["version"],
            "updated": r["info"]["last_deployed"],
            "status": r["info"]["status"],
            "chart": f"{r['chart']['metadata']['name']}-{r['chart']['metadata']['version']}",
            "app_version": str(r["chart"]["metadata"].get("appVersion", "")),
            "description": r["info"]["description"],
        }
        for r in history
    ]
    print(json.dumps(rows))
    return 0


def cmd_rollback(positional: list[str], flags: dict) -> int:
    name, namespace = positional[0], flags["namespace"]
    kube = Kube()
    kube.reachable()
    history = kube.releases(namespace, name)
    if not history:
        raise HelmExit("release: not found")
    if history[-1]["info"]["status"].startswith("pending-") and take_fault("rollback", name):
        raise HelmExit("another operation (install/upgrade/rollback) is in progress")
    target_rev = (
        int(positional[1])
        if len(positional) > 1 and positional[1] != "0"
        else (history[-2]["version"] if len(history) > 1 else history[-1]["version"])
    )
    target = next((r for r in history if r["version"] == target_rev), None)
    if target is None:
        raise HelmExit(f"release has no {target_rev} version")
    fault = take_fault("rollback", name)
    if fault and fault.get("action") == "fail":
        raise HelmExit(fault.get("stderr", "rollback failed"))
    docs = [d for d in yaml.safe_load_all(target["manifest"]) if d]
    kube.apply(namespace, docs)
    stamp = now()
    release = dict(
        target,
        version=history[-1]["version"] + 1,
        info=dict(
            target["info"],
            last_deployed=stamp,
            status="deployed",
            description=f"Rollback to {target_rev}",
        ),
    )
    for old in history:
        if old["info"]["status"] in (
            "deployed",
            "pending-upgrade",
            "pending-rollback",
            "pending-install",
        ):
            old["info"]["status"] = (
                "superseded" if old["info"]["status"] == "deployed" else "failed"
            )
            kube.save_release(old)
    kube.save_release(release)
    print("Rollback was a success! Happy Helming!")
    return 0


def cmd_list(positional: list[str], flags: dict) -> int:
    kube = Kube()
    kube.reachable()
    latest: dict[tuple[str, str], dict] = {}
    for release in kube.all_releases():
        key = (release["namespace"], release["name"])
        if key not in latest or release["version"] > latest[key]["version"]:
            latest[key] = release
    rows = [
        {
            "name": r["name"],
            "namespace": r["namespace"],
            "revision": str(r["version"]),
            "updated": r["info"]["last_deployed"],
            "status": r["info"]["status"],
            "chart": f"{r['chart']['metadata']['name']}-{r['chart']['metadata']['version']}",
            "app_version": str(r["chart"]["metadata"].get("appVersion", "")),
        }
        for r in sorted(latest.values(), key=lambda r: (r["namespace"], r["name"]))
    ]
    print(json.dumps(rows))
    return 0


def cancelled(signum, frame) -> None:
    """SIGTERM: helm cancels its context and exits with the error."""
    raise HelmExit("context canceled")


COMMANDS = {
    "upgrade": cmd_upgrade,
    "uninstall": cmd_uninstall,
    "status": cmd_status,
    "history": cmd_history,
    "rollback": cmd_rollback,
    "list": cmd_list,
    "ls": cmd_list,
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("version", "template", "lint", "show", "package", "dependency"):
        proc = real_helm(*argv)
        sys.stdout.write(proc.stdout)
        sys.stderr.write(proc.stderr)
        return proc.returncode
    command, rest = argv[0], argv[1:]
    positional, flags = parse(rest)
    signal.signal(signal.SIGTERM, cancelled)
    log_path = os.environ.get("FAKE_HELM_LOG")
    started = time.time()
    code = 1
    try:
        if command not in COMMANDS:
            raise HelmExit(f'unknown command "{command}" for "helm"')
        code = COMMANDS[command](positional, flags)
        return code
    except HelmExit as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        code = exc.code
        return code
    finally:
        if log_path:
            with open(log_path, "a") as log:
                line = {
                    "command": command,
                    "release": positional[0] if positional else "",
                    "start": started,
                    "end": time.time(),
                    "exit": code,
                }
                if os.environ.get("FAKE_HELM_SPAWNED"):
                    line["spawned"] = float(os.environ["FAKE_HELM_SPAWNED"])
                log.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
