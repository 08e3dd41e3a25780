"""The one driver every helm call goes through.

Each call is recorded before it starts and after it ends (argv with secrets
masked, exit code, trimmed output, duration), so the admin shows exactly what
ran. Failures come back as typed errors (``provisioning.errors``) classified
from helm's own wording.

helm is stopped with SIGTERM and a grace period, never SIGKILL first: a
killed helm leaves its release in ``pending-*`` and locks it for everyone.
"""

from __future__ import annotations

import json
import logging
import os
import re
import select
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable

from django.conf import settings
from django.utils import timezone

from provisioning import errors
from stores.models import CommandRecord

log = logging.getLogger(__name__)

OUTPUT_LIMIT = 8000
TERM_GRACE_SECONDS = 15
TICK_SECONDS = 1.0
PENDING_STATES = ("pending-install", "pending-upgrade", "pending-rollback")

# helm's wording for failures we can explain, most specific first.
_CLASSIFIERS: list[tuple[re.Pattern, type[errors.ProvisioningError]]] = [
    (re.compile(r"another operation \(install/upgrade/rollback\) is in progress"),
     errors.ReleaseLocked),
    (re.compile(r"exceeded quota|forbidden: exceeded"), errors.QuotaExceeded),
    (re.compile(r"too many requests|the server has received too many requests|status 429",
                re.I), errors.ClusterThrottled),
    (re.compile(r"kubernetes cluster unreachable|connection refused|no such host|"
                r"i/o timeout|TLS handshake timeout|no route to host", re.I),
     errors.ClusterUnreachable),
    (re.compile(r"values don't meet the specifications of the schema|parse error|"
                r"template: |YAML parse error|chart requires|Chart.yaml file is missing|"
                r"unable to build kubernetes objects|path .* not found", re.I),
     errors.ChartError),
    (re.compile(r"context deadline exceeded|timed out waiting|resource not ready|"
                r"DeadlineExceeded|BackoffLimitExceeded", re.I), errors.TimedOut),
]


def classify(stderr: str) -> type[errors.ProvisioningError]:
    for pattern, error in _CLASSIFIERS:
        if pattern.search(stderr):
            return error
    return errors.HelmFailed


def _wait(proc: subprocess.Popen, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for helm to exit; True once it has.

    Popen.wait(timeout) polls with sleeps growing to 50 ms, which adds up to
    that much to every helm call (bench/dispatch.py); a pidfd (Linux 5.3+)
    wakes us the moment helm exits.
    """
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        pidfd = None
    if pidfd is not None:
        try:
            select.select([pidfd], [], [], timeout)
        finally:
            os.close(pidfd)
        timeout = 0
    try:
        proc.wait(timeout=timeout)
        return True
    except subprocess.TimeoutExpired:
        return False


def mask(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "********")
    return text


def _trim(text: str) -> str:
    if len(text) <= OUTPUT_LIMIT:
        return text
    half = OUTPUT_LIMIT // 2
    return f"{text[:half]}\n... [{len(text) - OUTPUT_LIMIT} characters cut] ...\n{text[-half:]}"


def helm_env() -> dict[str, str]:
    env = dict(os.environ)
    if settings.KUBECONFIG:
        env["KUBECONFIG"] = settings.KUBECONFIG
    return env


class Helm:
    """helm for one store. ``tick`` is called about every second while helm
    runs; it renews the worker's lease and may raise to stop helm."""

    def __init__(
        self,
        store_id: str,
        *,
        secrets: Iterable[str] = (),
        tick: Callable[[], None] | None = None,
    ):
        self.store_id = store_id
        self.secrets = [s for s in secrets if s]
        self.tick = tick

    # -- commands ---------------------------------------------------------
    def upgrade_install(
        self, release: str, chart: str, namespace: str, values_files: list[str], timeout: int
    ) -> dict:
        args = ["upgrade", "--install", release, chart, "--namespace", namespace,
                "--wait", "--wait-for-jobs", "--timeout", f"{timeout}s",
                "--history-max", str(settings.STORE_HELM_HISTORY_MAX), "-o", "json"]
        for path in values_files:
            args += ["-f", path]
        result = self.run(args, timeout=timeout)
        return json.loads(result.stdout)

    def uninstall(self, release: str, namespace: str, timeout: int) -> bool:
        """Uninstall and wait; False when there was no such release."""
        result = self.run(
            ["uninstall", release, "--namespace", namespace, "--wait", "--timeout", f"{timeout}s"],
            timeout=timeout, ok_if=lambda r: "not found" in r.stderr,
        )
        return result.returncode == 0

    def status(self, release: str, namespace: str) -> dict | None:
        result = self.run(
            ["status", release, "--namespace", namespace, "-o", "json"],
            timeout=60, ok_if=lambda r: "release: not found" in r.stderr,
        )
        return json.loads(result.stdout) if result.returncode == 0 else None

    def history(self, release: str, namespace: str) -> list[dict]:
        result = self.run(
            ["history", release, "--namespace", namespace, "-o", "json"],
            timeout=60, ok_if=lambda r: "release: not found" in r.stderr,
        )
        return json.loads(result.stdout) if result.returncode == 0 else []

    def rollback(self, release: str, namespace: str, revision: int, timeout: int) -> None:
        self.run(
            ["rollback", release, str(revision), "--namespace", namespace,
             "--wait", "--wait-for-jobs", "--timeout", f"{timeout}s",
             "--history-max", str(settings.STORE_HELM_HISTORY_MAX)],
            timeout=timeout,
        )

    # -- the driver -------------------------------------------------------
    def run(
        self,
        args: list[str],
        *,
        timeout: int,
        ok_if: Callable[[subprocess.CompletedProcess], bool] | None = None,
    ) -> subprocess.CompletedProcess:
        argv = [settings.HELM_BIN, *args]
        record = CommandRecord.objects.create(
            store_id=self.store_id, tool="helm", argv=[mask(a, self.secrets) for a in argv]
        )
        started = time.monotonic()
        # helm's own --timeout covers waiting; allow a margin for its own work
        # before we step in.
        hard_deadline = started + timeout + 60
        try:
            returncode, stdout, stderr = self._execute(argv, hard_deadline)
        except FileNotFoundError as exc:
            returncode, stdout, stderr = 127, "", f"helm binary not found: {settings.HELM_BIN}"
            self._finish(record, started, returncode, stdout, stderr)
            raise errors.ClusterNotConfigured(stderr) from exc
        except BaseException:
            self._finish(record, started, None, "", "stopped by the platform")
            raise
        self._finish(record, started, returncode, stdout, stderr)

        result = subprocess.CompletedProcess(argv, returncode, stdout, stderr)
        if returncode == 0 or (ok_if and ok_if(result)):
            return result
        error = classify(stderr)
        first_line = next((ln for ln in stderr.splitlines() if ln.strip()), f"exit {returncode}")
        raise error(
            errors.shorten(mask(first_line.removeprefix("Error: "), self.secrets)),
            details={"helm_stderr": mask(_trim(stderr), self.secrets), "exit_code": returncode},
        )

    def _execute(self, argv: list[str], hard_deadline: float) -> tuple[int, str, str]:
        # Output goes to temporary files: pipes can fill up and block helm.
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            proc = subprocess.Popen(
                argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                env=helm_env(), start_new_session=True,
            )
            try:
                while not _wait(proc, TICK_SECONDS):
                    if time.monotonic() > hard_deadline:
                        self._stop(proc)
                        raise errors.TimedOut(
                            "helm did not finish within its timeout and was stopped"
                        )
                    if self.tick:
                        self.tick()
            except BaseException:
                self._stop(proc)
                raise
            out.seek(0)
            err.seek(0)
            return proc.returncode, out.read(), err.read()

    def _stop(self, proc: subprocess.Popen) -> None:
        """SIGTERM, a grace period for helm to release its lock, then SIGKILL."""
        if proc.poll() is not None:
            return
        log.warning("store=%s stopping helm pid=%s with SIGTERM", self.store_id, proc.pid)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=TERM_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            log.error("store=%s helm ignored SIGTERM, killing it", self.store_id)
            proc.kill()
            proc.wait()

    def _finish(self, record, started, returncode, stdout, stderr) -> None:
        duration = time.monotonic() - started
        record.exit_code = returncode
        record.stdout = mask(_trim(stdout), self.secrets)
        record.stderr = mask(_trim(stderr), self.secrets)
        record.finished_at = timezone.now()
        record.duration_ms = int(duration * 1000)
        record.save(update_fields=["exit_code", "stdout", "stderr", "finished_at", "duration_ms"])
        from provisioning import metrics

        metrics.observe_command("helm", record.argv[1] if len(record.argv) > 1 else "",
                                returncode, duration)
