"""A kubelet for the fake cluster's backup and restore Jobs (issue 12).

The fake API server holds the Jobs the platform creates from the charts'
CronJobs; this runs each one as a node would run its pod, as far as this
machine allows: the chart's own script (``charts/<engine>/files/<name>``,
the file the ConfigMap mounts) as a subprocess with the container's
environment. What a node would give the pod and this machine cannot is
mapped to local things, and only that:

- the Secret the Job mounts (the object storage keys the platform wrote
  into the store's namespace) becomes files with its keys' values;
- the in-cluster database address becomes the test's real database
  server, one database per store namespace;
- the files volume becomes a local directory per store namespace;
- the termination-message file becomes a local file, read back as the
  container's termination message.

Everything else (the bucket, endpoint and region from the chart's values,
the backup's prefix from the platform) is the Job's own.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from provisioning.tests.chartkit import ROOT

PYTHON_BIN = str(Path(sys.executable).parent)


@dataclass
class StoreData:
    """Where one store's data lives on this machine."""

    engine: str
    db: dict[str, str]  # DB_HOST, DB_PORT, DB_NAME, DB_USER, DB_PASSWORD_FILE
    files_dir: Path


@dataclass
class Kubelet:
    cluster: object  # provisioning.tests.fakes.kubeapi.Cluster
    extra_path: list[str] = field(default_factory=list)  # e.g. PostgreSQL's own bin
    stores: dict[str, StoreData] = field(default_factory=dict)  # by namespace
    ran: list[tuple[str, str, int]] = field(default_factory=list)  # namespace, job, exit code
    # Set to stop the next Job's script midway (SIGKILL), as a node's OOM killer would.
    kill_next: bool = False

    def __call__(self, namespace: str, job: dict) -> tuple[int, str]:
        store = self.stores[namespace]
        pod = job["spec"]["template"]["spec"]
        container = pod["containers"][0]
        script = Path(container["command"][-1]).name  # bash /backup/backup.sh
        env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
        with tempfile.TemporaryDirectory(prefix="kubelet-") as work:
            work = Path(work)
            env.update(self._secret_files(namespace, pod, container, work))
            env.update(store.db)
            env.update({
                "FILES_DIR": str(store.files_dir),
                "TERMINATION_LOG": str(work / "termination-log"),
                "PATH": os.pathsep.join([PYTHON_BIN, *self.extra_path, os.environ["PATH"]]),
                "PYTHONPATH": str(ROOT),
                "HOME": str(work), "TMPDIR": str(work),
            })
            command = ["bash", str(ROOT / "charts" / store.engine / "files" / script)]
            if self.kill_next:
                self.kill_next = False
                # The whole pod goes: the script and every process of its pipelines.
                command = ["bash", "-c", 'setsid bash "$0" & sleep 0.5; kill -9 -- -$!; '
                           'exit 137', *command[1:]]
            done = subprocess.run(command, env=env, capture_output=True, text=True,
                                  timeout=300)
            log = work / "termination-log"
            message = log.read_text().strip() if log.exists() else ""
        self.ran.append((namespace, job["metadata"]["name"], done.returncode))
        if done.returncode and not message:  # as Kubernetes' FallbackToLogsOnError
            message = (done.stderr.strip().splitlines() or [""])[-1]
        return done.returncode, message

    def _secret_files(self, namespace: str, pod: dict, container: dict,
                      work: Path) -> dict[str, str]:
        """Each mounted Secret's keys as files; the env variables that named
        paths under its mount now name the files."""
        mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
        moved = {}
        for volume in pod.get("volumes", []):
            if "secret" not in volume or volume["name"] not in mounts:
                continue
            code, secret = self.cluster.get("secrets", namespace, volume["secret"]["secretName"])
            if code != 200:
                continue  # optional: true and absent, as the script will find out
            local = work / volume["name"]
            local.mkdir()
            for key, value in (secret.get("data") or {}).items():
                (local / key).write_bytes(base64.b64decode(value))
            moved[mounts[volume["name"]].rstrip("/")] = str(local)
        env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
        remapped = {}
        for name, value in env.items():
            for mount, local in moved.items():
                if value.startswith(mount + "/"):
                    remapped[name] = local + value[len(mount):]
        return remapped
