"""The Kubernetes API calls the platform makes itself (helm makes the rest).

Everything goes through the official ``kubernetes`` client, configured from
``KUBECONFIG`` (or the pod's service account in a cluster). Client errors are
turned into the typed errors of ``provisioning.errors``; mutating calls are
recorded next to the helm commands of the store.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import urllib3
from django.conf import settings
from django.utils import timezone
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from provisioning import errors
from provisioning.engines import SMTP_SECRET_NAME
from stores import constants as c
from stores.models import CommandRecord

TIMEOUT = (3, 20)  # connect, read seconds


def _kubeconfig_path() -> str | None:
    if settings.KUBECONFIG:
        return settings.KUBECONFIG
    default = Path.home() / ".kube" / "config"
    return str(default) if default.exists() else None


def api_client() -> client.ApiClient:
    return _api_client(_kubeconfig_path())


@functools.cache
def _api_client(path: str | None) -> client.ApiClient:
    """One client per kubeconfig (they hold connection pools)."""
    configuration = client.Configuration()
    if path and not Path(path).exists():
        raise errors.ClusterNotConfigured(
            f"KUBECONFIG names {path}, which does not exist: point it at a kubeconfig "
            "(for example the one deploy/k3d-up.sh writes)."
        )
    try:
        if path:
            config.load_kube_config(config_file=path, client_configuration=configuration)
        elif os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)
        else:
            raise errors.ClusterNotConfigured(
                "No kubeconfig found: set KUBECONFIG or create ~/.kube/config "
                "(for example with deploy/k3d-up.sh)."
            )
    except config.ConfigException as exc:
        raise errors.ClusterNotConfigured(f"The kubeconfig could not be loaded: {exc}") from exc
    # We retry with our own backoff; urllib3's silent retries only slow down
    # the answer "the cluster is unreachable".
    configuration.retries = False
    return client.ApiClient(configuration)


def preload() -> None:
    """Import the client's API and model classes we use now, not on first use.

    The ``kubernetes`` package imports them lazily, and the first
    ``client.CoreV1Api`` pulls in some 250 model classes: about 2.5 s on
    our machines, which the first operation of every worker process would
    otherwise wait for. A worker calls this before it forks its pool.
    """
    for name in ("CoreV1Api", "BatchV1Api", "CustomObjectsApi", "VersionApi",
                 "V1Namespace", "V1ObjectMeta", "V1Secret"):
        getattr(client, name)


def core() -> client.CoreV1Api:
    return client.CoreV1Api(api_client())


# The Kubernetes API's own answer (or a stranger's page) kept word for word
# in a failure's details, up to this many characters.
RAW_LIMIT = 4000


def _translate(exc: Exception) -> Exception:
    """A typed error with a sentence for people; the answer itself, word for
    word, goes in ``details["raw"]`` (shown folded away, once)."""
    if not isinstance(exc, ApiException):
        return errors.ClusterUnreachable(
            f"Nothing answered at {_server()} ({_cause(exc)}).", details={"raw": str(exc)}
        )
    code = exc.status or 0
    body = exc.body if isinstance(exc.body, str) else (exc.body or b"").decode(errors="ignore")
    reason, message = _api_status(body)
    details = {"http_status": code, "raw": _limit(body)}
    said = f"The Kubernetes API said: {errors.shorten(message)}" if message else ""
    if code == 429:
        return errors.ClusterThrottled(
            "The Kubernetes API is throttling requests (HTTP 429).", details=details)
    if code == 403 and "exceeded quota" in body:
        return errors.QuotaExceeded(errors.shorten(message or body), details=details)
    if code >= 500 or not code:
        what = f" ({reason})" if reason else ""
        return errors.ClusterUnreachable(
            f"The Kubernetes API at {_server()} answered HTTP {code}{what}"
            + (f": {errors.shorten(message)}" if message else "."), details=details)
    if not reason:
        # Not a Kubernetes Status answer: something else lives at that address.
        kind = "an HTML page" if "<html" in body.lower() else "an answer"
        return errors.ClusterRejected(
            f"{_server()} answered HTTP {code} with {kind} that does not come from a "
            "Kubernetes API: check the server address in the kubeconfig.", details=details)
    if code == 401:
        return errors.ClusterUnauthorized(said or f"{_server()} answered HTTP 401.",
                                          details=details)
    if code == 403:
        return errors.ClusterForbidden(said, details=details)
    return errors.ClusterRejected(said or f"The Kubernetes API answered HTTP {code}.",
                                  details=details)


def _api_status(body: str) -> tuple[str, str]:
    """The reason and message of a Kubernetes ``Status`` answer, or blanks
    when the body is not one."""
    try:
        status = json.loads(body)
    except ValueError:
        return "", ""
    if not isinstance(status, dict) or status.get("kind") != "Status":
        return "", ""
    return str(status.get("reason") or ""), str(status.get("message") or "")


def _server() -> str:
    """Where the kubeconfig says the API is, for sentences."""
    try:
        return api_client().configuration.host or "the cluster"
    except errors.ProvisioningError:
        return "the cluster"


# How a connection failed, from the words urllib3 and the OS use.
_CAUSES = [
    ("connection refused", "connection refused"),
    ("timed out", "timed out"),
    ("name or service not known", "the host name does not resolve"),
    ("nodename nor servname", "the host name does not resolve"),
    ("failed to resolve", "the host name does not resolve"),
    ("temporary failure in name resolution", "the host name does not resolve"),
    ("certificate verify failed", "its TLS certificate is not trusted"),
    ("no route to host", "no route to the host"),
    ("network is unreachable", "the network is unreachable"),
    ("connection reset", "the connection was dropped"),
    ("remote end closed", "the connection was dropped"),
    ("connection aborted", "the connection was dropped"),
]


def _cause(exc: Exception) -> str:
    text = str(exc).lower()
    return next((words for needle, words in _CAUSES if needle in text),
                exc.__class__.__name__)


def _limit(text: str) -> str:
    if len(text) <= RAW_LIMIT:
        return text
    return f"{text[:RAW_LIMIT]}\n... [{len(text) - RAW_LIMIT} more characters]"


@contextlib.contextmanager
def translated():
    try:
        yield
    except ApiException as exc:
        raise _translate(exc) from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise _translate(exc) from exc


@contextlib.contextmanager
def recorded(store_id: str, *argv: str):
    """Record a mutating API call like a command: argv, outcome, duration."""
    record = CommandRecord.objects.create(store_id=store_id, tool="kube", argv=list(argv))
    started = time.monotonic()
    exit_code, message = 0, ""
    try:
        with translated():
            yield
    except Exception as exc:
        exit_code, message = 1, str(exc)
        raise
    finally:
        seconds = time.monotonic() - started
        record.exit_code = exit_code
        record.stderr = message[:2000]
        record.finished_at = timezone.now()
        record.duration_ms = int(seconds * 1000)
        record.save(update_fields=["exit_code", "stderr", "finished_at", "duration_ms"])
        from provisioning import metrics

        metrics.observe_command("kube", argv[0] if argv else "", exit_code, seconds)


def _is(exc: ApiException, status: int) -> bool:
    return isinstance(exc, ApiException) and exc.status == status


def ping() -> str:
    """The cluster's version string; raises when unreachable or unconfigured."""
    with translated():
        info = client.VersionApi(api_client()).get_code(_request_timeout=(2, 5))
    return info.git_version


def namespace_labels(store) -> dict[str, str]:
    from provisioning.engines import get_engine

    level = get_engine(store.engine).pod_security
    return {
        c.LABEL_MANAGED_BY: c.MANAGED_BY,
        c.LABEL_STORE_ID: store.id,
        # A pooled store has no owner yet; its claim re-labels the namespace.
        c.LABEL_OWNER: "" if store.owner_id is None else str(store.owner_id),
        "pod-security.kubernetes.io/enforce": level,
        "pod-security.kubernetes.io/audit": level,
        "pod-security.kubernetes.io/warn": level,
    }


def ensure_namespace(store, *, existing: bool = False) -> None:
    """Create the store's namespace with our labels, or re-label it.

    ``existing``: the namespace is expected to be there already (a claim
    re-labels a pooled store's), so it is patched first, one API call where
    creating first takes three; either way a missing namespace is created.
    """
    labels = namespace_labels(store)
    body = client.V1Namespace(metadata=client.V1ObjectMeta(name=store.namespace, labels=labels))
    with recorded(store.id, "create", "namespace", store.namespace):
        if existing and _relabel_namespace(store.namespace, labels):
            return
        try:
            core().create_namespace(body, _request_timeout=TIMEOUT)
            return
        except ApiException as exc:
            if not _is(exc, 409):
                raise
        if not _relabel_namespace(store.namespace, labels):
            # Gone between the two calls (the end of a deletion): create it now.
            core().create_namespace(body, _request_timeout=TIMEOUT)


def _relabel_namespace(name: str, labels: dict[str, str]) -> bool:
    """Patch the namespace's labels; False when there is no such namespace."""
    try:
        patched = core().patch_namespace(
            name, {"metadata": {"labels": labels}}, _request_timeout=TIMEOUT)
    except ApiException as exc:
        if _is(exc, 404):
            return False
        raise
    if patched.status and patched.status.phase == "Terminating":
        raise errors.NamespaceStuck(
            f"Namespace {name} is still terminating from an earlier deletion."
        )
    return True


def ensure_secret(store, name: str, values: dict[str, str]) -> bool:
    """Create the credentials Secret once; an existing one is never changed."""
    body = client.V1Secret(
        metadata=client.V1ObjectMeta(
            name=name, namespace=store.namespace,
            labels={c.LABEL_MANAGED_BY: c.MANAGED_BY, c.LABEL_STORE_ID: store.id},
        ),
        type="Opaque",
        data={k: base64.b64encode(v.encode()).decode() for k, v in values.items()},
    )
    with recorded(store.id, "create", "secret", name, "--namespace", store.namespace):
        try:
            core().create_namespaced_secret(store.namespace, body, _request_timeout=TIMEOUT)
            return True
        except ApiException as exc:
            if _is(exc, 409):
                return False
            raise


def ensure_smtp_secret(store, password: str) -> bool:
    """Write the SMTP relay's password into the Secret ``store-smtp`` (key
    ``password``) of the store's namespace: created, or replaced so a
    changed password reaches the store at its next install or upgrade.
    Without a password nothing is written; returns whether it wrote."""
    if not password:
        return False
    apply_secret(store, SMTP_SECRET_NAME, {"password": password})
    return True


def apply_secret(store, name: str, values: dict[str, str]) -> None:
    """Create Secret ``name`` in the store's namespace, or replace it, so a
    changed value (a rotated key, a new password) reaches the store. The
    values only travel in the request body: the recorded command names the
    Secret, never its content."""
    body = client.V1Secret(
        metadata=client.V1ObjectMeta(
            name=name, namespace=store.namespace,
            labels={c.LABEL_MANAGED_BY: c.MANAGED_BY, c.LABEL_STORE_ID: store.id},
        ),
        type="Opaque",
        data={k: base64.b64encode(v.encode()).decode() for k, v in values.items()},
    )
    with recorded(store.id, "apply", "secret", name, "--namespace", store.namespace):
        try:
            core().create_namespaced_secret(store.namespace, body, _request_timeout=TIMEOUT)
        except ApiException as exc:
            if not _is(exc, 409):
                raise
            core().replace_namespaced_secret(name, store.namespace, body,
                                             _request_timeout=TIMEOUT)


def delete_volumes(store) -> int:
    """Delete the store's PersistentVolumeClaims; returns how many there were."""
    with recorded(store.id, "delete", "pvc", "--all", "--namespace", store.namespace):
        try:
            claims = core().list_namespaced_persistent_volume_claim(
                store.namespace, _request_timeout=TIMEOUT
            ).items
        except ApiException as exc:
            if _is(exc, 404):
                return 0
            raise
        for claim in claims:
            try:
                core().delete_namespaced_persistent_volume_claim(
                    claim.metadata.name, store.namespace, _request_timeout=TIMEOUT
                )
            except ApiException as exc:
                if not _is(exc, 404):
                    raise
        return len(claims)


def delete_namespace(namespace: str, store_id: str | None = None) -> None:
    """Delete a namespace (already gone is fine). With a store id the call is
    recorded with the store's commands; the orphan sweep has no store."""
    context = recorded(store_id, "delete", "namespace", namespace) if store_id else translated()
    with context:
        try:
            core().delete_namespace(namespace, _request_timeout=TIMEOUT)
        except ApiException as exc:
            if not _is(exc, 404):
                raise


def namespace_state(namespace: str) -> dict | None:
    """None when the namespace is gone; else its phase and what holds it."""
    with translated():
        try:
            ns = core().read_namespace(namespace, _request_timeout=TIMEOUT)
        except ApiException as exc:
            if _is(exc, 404):
                return None
            raise
    conditions = [
        {"type": cond.type, "message": cond.message}
        for cond in (ns.status.conditions or [])
        if cond.status == "True" and cond.message
    ]
    return {
        "phase": ns.status.phase,
        "finalizers": list(ns.spec.finalizers or []) if ns.spec else [],
        "metadata_finalizers": list(ns.metadata.finalizers or []),
        "conditions": conditions,
    }


def diagnostics(namespace: str, limit: int = 20) -> dict:
    """Warning events and pod states of a namespace, for a failed store."""
    result: dict = {"events": [], "pods": []}
    try:
        with translated():
            events = core().list_namespaced_event(namespace, _request_timeout=TIMEOUT).items
            pods = core().list_namespaced_pod(namespace, _request_timeout=TIMEOUT).items
    except errors.ProvisioningError as exc:
        result["error"] = exc.message
        return result
    except ApiException:  # pragma: no cover - translated() re-raises typed errors
        return result
    warnings = [e for e in events if e.type == "Warning"]
    warnings.sort(key=lambda e: str(e.last_timestamp or e.event_time or ""), reverse=True)
    for event in warnings[:limit]:
        obj = event.involved_object
        result["events"].append({
            "object": f"{obj.kind}/{obj.name}" if obj else "",
            "reason": event.reason,
            "message": event.message,
            "count": event.count,
        })
    for pod in pods:
        states = []
        for status in (pod.status.container_statuses or []) + (
            pod.status.init_container_statuses or []
        ):
            state = "running"
            detail = ""
            if status.state and status.state.waiting:
                state, detail = status.state.waiting.reason, status.state.waiting.message or ""
            elif status.state and status.state.terminated:
                state = status.state.terminated.reason or "terminated"
            states.append({
                "container": status.name, "ready": bool(status.ready), "state": state,
                "detail": detail, "restarts": status.restart_count,
            })
        result["pods"].append({
            "name": pod.metadata.name, "phase": pod.status.phase, "containers": states,
        })
    return result


def quota_rejection(namespace: str) -> str | None:
    """The message of a quota rejection in the namespace's events, if any.

    Pods refused by the ResourceQuota never appear; helm would only notice
    at its timeout. The events say it at once.
    """
    with translated():
        try:
            events = core().list_namespaced_event(namespace, _request_timeout=TIMEOUT).items
        except ApiException as exc:
            if _is(exc, 404):
                return None
            raise
    for event in events:
        if event.type == "Warning" and "exceeded quota" in (event.message or ""):
            return event.message
    return None


def managed_namespaces() -> list[dict]:
    """Every namespace carrying our label, with its store id."""
    with translated():
        items = core().list_namespace(
            label_selector=f"{c.LABEL_MANAGED_BY}={c.MANAGED_BY}", _request_timeout=TIMEOUT
        ).items
    return [
        {
            "name": ns.metadata.name,
            "store_id": (ns.metadata.labels or {}).get(c.LABEL_STORE_ID, ""),
            "phase": ns.status.phase if ns.status else "",
            "created": ns.metadata.creation_timestamp,
        }
        for ns in items
    ]


def release_status(namespace: str, release: str) -> str | None:
    """The status of a release's latest revision, read the way helm reads it:
    from its storage Secrets' labels (owner=helm, name, status, version).
    Cheaper than running ``helm status`` for every store on every check."""
    with translated():
        try:
            items = core().list_namespaced_secret(
                namespace, label_selector=f"owner=helm,name={release}", _request_timeout=TIMEOUT
            ).items
        except ApiException as exc:
            if _is(exc, 404):
                return None
            raise
    if not items:
        return None
    latest = max(items, key=lambda s: int((s.metadata.labels or {}).get("version", "0")))
    return (latest.metadata.labels or {}).get("status")


def unready_pods(namespace: str) -> list[str]:
    """Pods that should serve but do not: not Running, or a container not ready.

    Pods of Jobs (the setup Job, the cron Jobs) never serve: a setup attempt
    that failed before a second one succeeded, or a cron run waiting for a
    node, says nothing about the shop (a failed Job fails the helm release,
    which is checked on its own). Finished pods are history: their
    replacement, if any, is what is checked."""
    with translated():
        pods = core().list_namespaced_pod(namespace, _request_timeout=TIMEOUT).items
    problems = []
    for pod in pods:
        phase = pod.status.phase if pod.status else "Unknown"
        owners = pod.metadata.owner_references or []
        if phase in ("Succeeded", "Failed") or any(o.kind == "Job" for o in owners):
            continue
        waiting = [
            s.state.waiting.reason for s in (pod.status.container_statuses or [])
            if s.state and s.state.waiting
        ]
        not_ready = [s.name for s in (pod.status.container_statuses or []) if not s.ready]
        if phase != "Running" or not_ready:
            detail = ", ".join(waiting) or phase
            problems.append(f"{pod.metadata.name} ({detail})")
    return problems


# -- cert-manager (issue 11) ----------------------------------------------------
def _custom() -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client())


def certificates(namespace: str) -> dict[str, dict]:
    """cert-manager Certificates of a namespace by name: whether each is
    Ready and the message of its Ready condition."""
    with translated():
        try:
            items = _custom().list_namespaced_custom_object(
                "cert-manager.io", "v1", namespace, "certificates", _request_timeout=TIMEOUT
            )["items"]
        except ApiException as exc:
            if _is(exc, 404):
                # The namespace or, more likely, cert-manager's CRDs are missing.
                return {}
            raise
    found = {}
    for item in items:
        ready = next((cond for cond in (item.get("status") or {}).get("conditions") or []
                      if cond.get("type") == "Ready"), {})
        found[item["metadata"]["name"]] = {
            "ready": ready.get("status") == "True",
            "reason": ready.get("reason", ""),
            "message": ready.get("message", ""),
            "dns_names": (item.get("spec") or {}).get("dnsNames") or [],
            "not_after": (item.get("status") or {}).get("notAfter", ""),
        }
    return found


def certificate_diagnostics(namespace: str, names: list[str]) -> dict:
    """Why certificates are not issued: their state, the ACME Challenges and
    the cert-manager events of the namespace, for a failed store's page."""
    result: dict = {"certificates": [], "challenges": [], "events": []}
    try:
        states = certificates(namespace)
        with translated():
            try:
                challenges = _custom().list_namespaced_custom_object(
                    "acme.cert-manager.io", "v1", namespace, "challenges",
                    _request_timeout=TIMEOUT)["items"]
            except ApiException as exc:
                if not _is(exc, 404):
                    raise
                challenges = []
            events = core().list_namespaced_event(namespace, _request_timeout=TIMEOUT).items
    except errors.ProvisioningError as exc:
        result["error"] = exc.message
        return result
    for name in names:
        state = states.get(name)
        result["certificates"].append({
            "name": name,
            "dns_names": state["dns_names"] if state else [],
            "ready": bool(state and state["ready"]),
            "message": state["message"] if state else
            "cert-manager has not created this Certificate: is cert-manager installed, and "
            "does the Ingress carry its issuer annotation?",
        })
    for challenge in challenges:
        status = challenge.get("status") or {}
        result["challenges"].append({
            "name": challenge["metadata"]["name"],
            "dns_name": (challenge.get("spec") or {}).get("dnsName", ""),
            "state": status.get("state", ""),
            "reason": status.get("reason", ""),
        })
    kinds = {"Certificate", "CertificateRequest", "Order", "Challenge"}
    for event in events:
        obj = event.involved_object
        if obj is not None and obj.kind in kinds:
            result["events"].append({
                "object": f"{obj.kind}/{obj.name}", "type": event.type,
                "reason": event.reason, "message": event.message,
            })
    return result


# -- Backup and restore Jobs (issue 12) ----------------------------------------
def _batch() -> client.BatchV1Api:
    return client.BatchV1Api(api_client())


def start_job(store, template: str, name: str, env: dict[str, str]) -> bool:
    """Create Job ``name`` from the store's suspended CronJob ``template``,
    as ``kubectl create job --from=cronjob/<template>`` does, with ``env``
    added to each container. The chart owns the pod (image, volumes, the
    database's address, the fences); the platform only says which backup.
    An existing Job of that name is left as it is (a resumed operation
    finds the Job its first attempt started); returns whether it created."""
    api = api_client()
    with translated():
        try:
            _batch().read_namespaced_job(name, store.namespace, _request_timeout=TIMEOUT)
            return False
        except ApiException as exc:
            if not _is(exc, 404):
                raise
        cronjob = api.sanitize_for_serialization(
            _batch().read_namespaced_cron_job(template, store.namespace,
                                              _request_timeout=TIMEOUT))
    spec = cronjob["spec"]["jobTemplate"]["spec"]
    for container in spec["template"]["spec"]["containers"]:
        container["env"] = [e for e in container.get("env", []) if e["name"] not in env] + [
            {"name": key, "value": value} for key, value in env.items()]
    labels = {**(cronjob["spec"]["jobTemplate"].get("metadata", {}).get("labels") or {}),
              c.LABEL_MANAGED_BY: c.MANAGED_BY, c.LABEL_STORE_ID: store.id}
    body = {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": store.namespace, "labels": labels,
                     "annotations": {"cronjob.kubernetes.io/instantiate": "manual"}},
        "spec": spec,
    }
    with recorded(store.id, "create", "job", name, "--from", f"cronjob/{template}",
                  "--namespace", store.namespace):
        try:
            _batch().create_namespaced_job(store.namespace, body, _request_timeout=TIMEOUT)
        except ApiException as exc:
            if _is(exc, 409):
                return False
            raise
    return True


def cronjob_exists(namespace: str, name: str) -> bool:
    with translated():
        try:
            _batch().read_namespaced_cron_job(name, namespace, _request_timeout=TIMEOUT)
            return True
        except ApiException as exc:
            if _is(exc, 404):
                return False
            raise


@dataclass(frozen=True)
class JobState:
    phase: str  # running, succeeded, failed, missing
    message: str = ""  # why it failed: the container's termination message
    reason: str = ""  # the Job's Failed condition: BackoffLimitExceeded, DeadlineExceeded


def job_state(namespace: str, name: str) -> JobState:
    """Where a Job is. A failed one says why in its pod's termination
    message (what its script wrote to /dev/termination-log), else in the
    Job's own condition (a deadline, a pod killed)."""
    with translated():
        try:
            job = _batch().read_namespaced_job(name, namespace, _request_timeout=TIMEOUT)
        except ApiException as exc:
            if _is(exc, 404):
                return JobState("missing")
            raise
        status = job.status
        if status and status.succeeded:
            return JobState("succeeded")
        failed = [cond for cond in (status.conditions or []) if cond.type == "Failed"
                  and cond.status == "True"] if status else []
        if not failed and not (status and status.failed):
            return JobState("running")
        pods = core().list_namespaced_pod(namespace, label_selector=f"job-name={name}",
                                          _request_timeout=TIMEOUT).items
    condition = failed[0] if failed else None
    reason = (condition.reason or "") if condition else ""
    for pod in pods:
        for container in (pod.status.container_statuses or []) if pod.status else []:
            ended = container.state and container.state.terminated
            if ended and ended.exit_code:
                text = (ended.message or "").strip()
                return JobState("failed", text or f"the Job's container stopped with exit code "
                                f"{ended.exit_code} ({ended.reason or 'no reason given'}).",
                                reason)
    return JobState("failed", (condition.message or condition.reason) if condition
                    else "the Job failed without saying why.", reason)


def delete_job(store, name: str) -> None:
    with recorded(store.id, "delete", "job", name, "--namespace", store.namespace):
        try:
            _batch().delete_namespaced_job(name, store.namespace, propagation_policy="Background",
                                           _request_timeout=TIMEOUT)
        except ApiException as exc:
            if not _is(exc, 404):
                raise
