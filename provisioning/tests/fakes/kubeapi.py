"""A small, stateful fake Kubernetes API server on loopback, plus a fake
ingress controller.

The platform's ``kubernetes`` client and the fake helm talk to it over real
HTTP, exactly as they would to a cluster; nothing of ours is patched. It
speaks the subset of the API they use, with the real API's shapes: object
metadata (uid, resourceVersion, creationTimestamp), list kinds, label
selectors, ``Status`` error bodies (404 NotFound, 409 AlreadyExists, 403 for
new content in a terminating namespace, 429 TooManyRequests), and namespace
deletion through the ``Terminating`` phase.

Faults, for the reliability tests and the chaos script, are set through the
object (``server.faults``) or over HTTP (``POST /_fake/faults``):

- ``refuse``: stop listening altogether (connection refused), see pause()
- ``throttle``: answer the next N requests with 429
- ``stuck_namespaces``: namespaces whose deletion hangs on a finalizer
- ``storefront_down``: hosts for which the fake ingress answers 503
- ``refuse``: requests answered with an error instead, a list of rules
  ``{"method": "POST", "path": "/api/v1/namespaces", "code": 403,
  "reason": "Forbidden", "message": "...", "times": 1}`` (``times`` omitted:
  every time); the answer is a ``Status`` object as the real API sends, or,
  with ``"html": "<html>..."``, that page (something else at the address)
- ``certificates_pending``: hosts (or ``*``) whose cert-manager Certificate
  stays not Ready, with a pending ACME Challenge
- ``expired_certificates``: hosts the HTTPS ingress serves an expired
  certificate for
- ``default_certificate``: ``self-signed`` (the controller's own, as traefik
  and ingress-nginx ship) or ``wildcard`` (a CA-signed one for
  ``*.<wildcard_domain>``, the operator's wildcard certificate)

The fake ingress answers 200 for any Host that an Ingress object in a live
namespace routes, and 404 otherwise, like an ingress controller would. Given
a test CA, it also listens for HTTPS and picks the certificate by SNI as a
controller does: the CA-signed certificate of a Ready Certificate naming the
host, else its default certificate.

cert-manager's ingress-shim is modelled: an Ingress annotated
``cert-manager.io/cluster-issuer`` (or ``issuer``) gets a Certificate
(cert-manager.io/v1) per ``spec.tls`` entry, named after its secretName and
owned by the Ingress; its Ready condition follows ``certificates_pending``.

Run standalone: ``python -m provisioning.tests.fakes.kubeapi --port 0``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import re
import socket
import ssl
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

CORE_RESOURCES = {
    "namespaces": "Namespace",
    "secrets": "Secret",
    "configmaps": "ConfigMap",
    "services": "Service",
    "serviceaccounts": "ServiceAccount",
    "pods": "Pod",
    "events": "Event",
    "persistentvolumeclaims": "PersistentVolumeClaim",
    "resourcequotas": "ResourceQuota",
    "limitranges": "LimitRange",
    "endpoints": "Endpoints",
}
GROUP_RESOURCES = {
    "deployments": "Deployment",
    "statefulsets": "StatefulSet",
    "replicasets": "ReplicaSet",
    "jobs": "Job",
    "cronjobs": "CronJob",
    "ingresses": "Ingress",
    "networkpolicies": "NetworkPolicy",
    "horizontalpodautoscalers": "HorizontalPodAutoscaler",
    "poddisruptionbudgets": "PodDisruptionBudget",
    "roles": "Role",
    "rolebindings": "RoleBinding",
    "certificates": "Certificate",
    "challenges": "Challenge",
    "middlewares": "Middleware",
}
SHIM_ANNOTATIONS = ("cert-manager.io/cluster-issuer", "cert-manager.io/issuer")
KIND_TO_RESOURCE = {kind: res for res, kind in {**CORE_RESOURCES, **GROUP_RESOURCES}.items()}

PATH = re.compile(
    r"^/(?:api/(?P<core_version>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<ns>[^/]+))?(?:/(?P<resource>[a-z]+))?(?:/(?P<name>[^/]+))?/?$"
)


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_body(code: int, reason: str, message: str, name: str = "", kind: str = "") -> dict:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": {"name": name, "kind": kind},
        "code": code,
    }


def merge(target: dict, patch: dict) -> dict:
    """JSON merge patch (RFC 7386), which covers the patches we send."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


def matches(labels: dict, selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key) != value:
                return False
        elif labels.get(term) is None:
            return False
    return True


class Cluster:
    """The state: objects keyed by (resource, namespace, name)."""

    def __init__(self):
        self.lock = threading.RLock()
        self.objects: dict[tuple[str, str, str], dict] = {}
        self.version = 1
        self.faults: dict = {"throttle": 0, "stuck_namespaces": set(), "storefront_down": set(),
                             "refuse": [],
                             "certificates_pending": set(), "expired_certificates": set(),
                             "default_certificate": "self-signed", "wildcard_domain": ""}
        self.terminate_delay = 0.05
        self.requests: list[tuple[str, str]] = []
        # The kubelet of Jobs: called as job_runner(namespace, job) in a
        # thread once a Job is created, it runs the Job's work and returns
        # (exit code, termination message). None: Jobs stay active, as on a
        # cluster with no node to run them.
        self.job_runner = None

    def _meta(self, obj: dict, namespace: str) -> dict:
        self.version += 1
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", now_iso())
        meta["resourceVersion"] = str(self.version)
        if namespace:
            meta["namespace"] = namespace
        return obj

    def namespace_phase(self, name: str) -> str | None:
        ns = self.objects.get(("namespaces", "", name))
        return ns["status"]["phase"] if ns else None

    def create(self, resource: str, namespace: str, obj: dict) -> tuple[int, dict]:
        name = obj.get("metadata", {}).get("name") or ""
        if not name and obj.get("metadata", {}).get("generateName"):
            name = obj["metadata"]["generateName"] + uuid.uuid4().hex[:5]
            obj["metadata"]["name"] = name
        with self.lock:
            if namespace:
                phase = self.namespace_phase(namespace)
                if phase is None:
                    return 404, status_body(
                        404,
                        "NotFound",
                        f'namespaces "{namespace}" not found',
                        namespace,
                        "namespaces",
                    )
                if phase == "Terminating":
                    return 403, status_body(
                        403,
                        "Forbidden",
                        f'{resource} "{name}" is forbidden: unable to create new content in '
                        f"namespace {namespace} because it is being terminated",
                        name,
                        resource,
                    )
            key = (resource, namespace, name)
            if key in self.objects:
                return 409, status_body(
                    409, "AlreadyExists", f'{resource} "{name}" already exists', name, resource
                )
            obj = self._meta(copy.deepcopy(obj), namespace)
            if resource == "namespaces":
                obj.setdefault("spec", {"finalizers": ["kubernetes"]})
                obj["status"] = {"phase": "Active"}
            self.objects[key] = obj
            if resource == "ingresses":
                self._ingress_shim(namespace, obj)
            if resource == "jobs" and self.job_runner is not None:
                threading.Thread(target=self._run_job, args=(namespace, copy.deepcopy(obj)),
                                 daemon=True).start()
            return 201, obj

    def get(self, resource: str, namespace: str, name: str) -> tuple[int, dict]:
        with self.lock:
            obj = self.objects.get((resource, namespace, name))
            if obj is None:
                return 404, status_body(
                    404, "NotFound", f'{resource} "{name}" not found', name, resource
                )
            return 200, self._observed(resource, obj)

    def list(self, resource: str, namespace: str | None, selector: str) -> list[dict]:
        with self.lock:
            if resource == "challenges":
                return self._challenges(namespace)
            return [
                self._observed(res, obj)
                for (res, ns, _), obj in sorted(self.objects.items())
                if res == resource
                and (namespace is None or ns == namespace)
                and matches(obj["metadata"].get("labels") or {}, selector)
            ]

    def replace(self, resource: str, namespace: str, name: str, obj: dict) -> tuple[int, dict]:
        with self.lock:
            if (resource, namespace, name) not in self.objects:
                return 404, status_body(
                    404, "NotFound", f'{resource} "{name}" not found', name, resource
                )
            old = self.objects[(resource, namespace, name)]
            obj = copy.deepcopy(obj)
            obj.setdefault("metadata", {})["uid"] = old["metadata"]["uid"]
            obj["metadata"]["creationTimestamp"] = old["metadata"]["creationTimestamp"]
            if resource == "namespaces":
                obj["status"] = old["status"]
            self.objects[(resource, namespace, name)] = self._meta(obj, namespace)
            if resource == "ingresses":
                self._ingress_shim(namespace, obj)
            return 200, copy.deepcopy(self.objects[(resource, namespace, name)])

    def patch(self, resource: str, namespace: str, name: str, patch: dict) -> tuple[int, dict]:
        with self.lock:
            obj = self.objects.get((resource, namespace, name))
            if obj is None:
                return 404, status_body(
                    404, "NotFound", f'{resource} "{name}" not found', name, resource
                )
            merge(obj, patch)
            self._meta(obj, namespace)
            return 200, copy.deepcopy(obj)

    def delete(self, resource: str, namespace: str, name: str) -> tuple[int, dict]:
        with self.lock:
            obj = self.objects.get((resource, namespace, name))
            if obj is None:
                return 404, status_body(
                    404, "NotFound", f'{resource} "{name}" not found', name, resource
                )
            if resource != "namespaces":
                del self.objects[(resource, namespace, name)]
                if resource in ("ingresses", "jobs"):  # garbage collection of what it owns
                    for key, other in list(self.objects.items()):
                        owners = other["metadata"].get("ownerReferences") or []
                        if key[1] == namespace and any(
                                o.get("uid") == obj["metadata"]["uid"] for o in owners):
                            del self.objects[key]
                return 200, obj
            if obj["status"]["phase"] != "Terminating":
                obj["status"]["phase"] = "Terminating"
                obj["metadata"]["deletionTimestamp"] = now_iso()
                threading.Thread(target=self._finish_namespace, args=(name,), daemon=True).start()
            return 200, copy.deepcopy(obj)

    def _run_job(self, namespace: str, job: dict) -> None:
        """Run a Job as a node would: one pod (labelled ``job-name`` like the
        Job controller's), its container's exit code and termination
        message, then the Job's status (``succeeded`` / ``failed`` with a
        ``Complete`` or ``Failed`` condition)."""
        name = job["metadata"]["name"]
        try:
            code, message = self.job_runner(namespace, job)
        except Exception as exc:  # a runner that broke is a pod that crashed
            code, message = 1, f"fake kubelet: {exc}"
        container = job["spec"]["template"]["spec"]["containers"][0]["name"]
        pod = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": f"{name}-{uuid.uuid4().hex[:5]}",
                "labels": {"job-name": name, "batch.kubernetes.io/job-name": name},
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": name,
                                     "uid": job["metadata"]["uid"], "controller": True}],
            },
            "spec": job["spec"]["template"]["spec"],
            "status": {"phase": "Succeeded" if code == 0 else "Failed",
                       "containerStatuses": [{
                           "name": container, "ready": False, "restartCount": 0,
                           "image": "", "imageID": "",
                           "state": {"terminated": {
                               "exitCode": code, "reason": "Completed" if code == 0 else "Error",
                               "message": message}}}]},
        }
        with self.lock:
            if ("jobs", namespace, name) not in self.objects:
                return  # deleted while it ran
            self.create("pods", namespace, pod)
            stored = self.objects[("jobs", namespace, name)]
            condition = {"type": "Complete" if code == 0 else "Failed", "status": "True",
                         "lastTransitionTime": now_iso()}
            if code:
                condition.update(reason="BackoffLimitExceeded",
                                 message="Job has reached the specified backoff limit")
            stored["status"] = {"succeeded" if code == 0 else "failed": 1,
                                "conditions": [condition]}
            self._meta(stored, namespace)

    def _finish_namespace(self, name: str) -> None:
        """Remove a terminating namespace and its content, unless stuck."""
        time.sleep(self.terminate_delay)
        while True:
            with self.lock:
                if name not in self.faults["stuck_namespaces"]:
                    for key in [k for k in self.objects if k[1] == name]:
                        del self.objects[key]
                    self.objects.pop(("namespaces", "", name), None)
                    return
                ns = self.objects.get(("namespaces", "", name))
                if ns is not None:
                    ns["status"]["conditions"] = [
                        {
                            "type": "NamespaceFinalizersRemaining",
                            "status": "True",
                            "reason": "SomeFinalizersRemain",
                            "message": "Some content in the namespace has finalizers remaining: "
                            "example.com/backup-protection in 1 resource instances",
                        }
                    ]
            time.sleep(0.1)

    def ingress_hosts(self) -> set[str]:
        with self.lock:
            hosts = set()
            for (res, ns, _), obj in self.objects.items():
                if res == "ingresses" and self.namespace_phase(ns) == "Active":
                    for rule in obj.get("spec", {}).get("rules", []):
                        hosts.add(rule.get("host", ""))
            return hosts

    # -- cert-manager ---------------------------------------------------------
    def _ingress_shim(self, namespace: str, ingress: dict) -> None:
        """What cert-manager's ingress-shim does for an annotated Ingress."""
        annotations = ingress["metadata"].get("annotations") or {}
        issuer_kind = next((a for a in SHIM_ANNOTATIONS if annotations.get(a)), None)
        if issuer_kind is None:
            return
        for entry in ingress.get("spec", {}).get("tls") or []:
            secret = entry.get("secretName")
            if not secret:
                continue  # cert-manager emits BadConfig and skips the entry
            certificate = {
                "apiVersion": "cert-manager.io/v1",
                "kind": "Certificate",
                "metadata": {
                    "name": secret,
                    "labels": dict(ingress["metadata"].get("labels") or {}),
                    "ownerReferences": [{
                        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                        "name": ingress["metadata"]["name"],
                        "uid": ingress["metadata"]["uid"], "controller": True,
                        "blockOwnerDeletion": True,
                    }],
                },
                "spec": {
                    "dnsNames": list(entry.get("hosts") or []),
                    "secretName": secret,
                    "usages": ["digital signature", "key encipherment"],
                    "issuerRef": {
                        "name": annotations[issuer_kind], "group": "cert-manager.io",
                        "kind": "ClusterIssuer" if "cluster" in issuer_kind else "Issuer",
                    },
                },
            }
            key = ("certificates", namespace, secret)
            if key in self.objects:
                self.objects[key]["spec"] = certificate["spec"]
                continue
            self.objects[key] = self._meta(certificate, namespace)
            self._event(namespace, "Certificate", secret, "Normal", "Issuing",
                        "Issuing certificate as Secret does not exist")

    def _event(self, namespace: str, kind: str, name: str, type_: str, reason: str,
               message: str) -> None:
        event = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{name}.{uuid.uuid4().hex[:16]}"},
            "type": type_, "reason": reason, "message": message, "count": 1,
            "lastTimestamp": now_iso(), "source": {"component": "cert-manager-certificates"},
            "involvedObject": {"kind": kind, "name": name, "namespace": namespace},
        }
        self.objects[("events", namespace, event["metadata"]["name"])] = self._meta(
            event, namespace)

    def certificate_pending(self, hosts: list[str]) -> bool:
        pending = self.faults["certificates_pending"]
        return "*" in pending or any(host in pending for host in hosts)

    def certificate_ready_for(self, host: str) -> bool:
        """Does a Ready Certificate in a live namespace name ``host``?"""
        with self.lock:
            for (res, ns, _), obj in self.objects.items():
                names = obj.get("spec", {}).get("dnsNames") or []
                if (res == "certificates" and host in names
                        and self.namespace_phase(ns) == "Active"
                        and not self.certificate_pending(names)):
                    return True
            return False

    def _observed(self, resource: str, obj: dict) -> dict:
        """An object as the API shows it now (a Certificate's status follows
        the certificates_pending fault, as if cert-manager were working)."""
        obj = copy.deepcopy(obj)
        if resource == "certificates":
            if self.certificate_pending(obj["spec"]["dnsNames"]):
                obj["status"] = {"conditions": [
                    {"type": "Ready", "status": "False", "reason": "DoesNotExist",
                     "message": "Issuing certificate as Secret does not exist",
                     "lastTransitionTime": obj["metadata"]["creationTimestamp"]},
                    {"type": "Issuing", "status": "True", "reason": "DoesNotExist",
                     "message": "Issuing certificate as Secret does not exist",
                     "lastTransitionTime": obj["metadata"]["creationTimestamp"]},
                ]}
            else:
                obj["status"] = {"conditions": [
                    {"type": "Ready", "status": "True", "reason": "Ready",
                     "message": "Certificate is up to date and has not expired",
                     "lastTransitionTime": now_iso()},
                ], "notAfter": "2099-01-01T00:00:00Z"}
        return obj

    def _challenges(self, namespace: str | None) -> list[dict]:
        """The ACME Challenges of the Certificates still pending."""
        found = []
        for (res, ns, name), obj in sorted(self.objects.items()):
            if res != "certificates" or (namespace is not None and ns != namespace):
                continue
            for host in obj["spec"]["dnsNames"]:
                if not self.certificate_pending([host]):
                    continue
                token = uuid.uuid5(uuid.NAMESPACE_DNS, host).hex
                found.append({
                    "apiVersion": "acme.cert-manager.io/v1", "kind": "Challenge",
                    "metadata": {"name": f"{name}-1-{token[:10]}", "namespace": ns},
                    "spec": {"dnsName": host, "type": "HTTP-01", "token": token},
                    "status": {
                        "presented": True, "processing": True, "state": "pending",
                        "reason": "Waiting for HTTP-01 challenge propagation: failed to "
                                  f"perform self check GET request 'http://{host}/.well-known/"
                                  f"acme-challenge/{token}': Get \"http://{host}/.well-known/"
                                  f"acme-challenge/{token}\": dial tcp: i/o timeout",
                    },
                })
        return found

    def snapshot(self) -> dict:
        with self.lock:
            return {"/".join(k): copy.deepcopy(v) for k, v in self.objects.items()}


class ApiHandler(BaseHTTPRequestHandler):
    cluster: Cluster
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the body waits
    # for the client's delayed ACK (~40 ms a request), which a real API
    # server does not add.
    disable_nagle_algorithm = True

    def log_message(self, *args):  # quiet
        pass

    def _send(self, code: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_raw(self, code: int, data: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _refusal(self, method: str, path: str) -> dict | None:
        """The first ``refuse`` rule for this request, used up if counted."""
        for rule in self.cluster.faults["refuse"]:
            if rule.get("method", method) == method and path.rstrip("/") == rule["path"]:
                if "times" in rule:
                    rule["times"] -= 1
                    if rule["times"] <= 0:
                        self.cluster.faults["refuse"].remove(rule)
                return rule
        return None

    def _body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}") if length else {}

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_PATCH(self):
        self._handle("PATCH")

    def do_DELETE(self):
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        cluster = self.cluster
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        body = self._body() if method in ("POST", "PUT", "PATCH") else {}
        if url.path == "/_fake/faults":
            return self._faults(method, body)
        if url.path == "/_fake/state":
            return self._send(200, cluster.snapshot())
        with cluster.lock:
            cluster.requests.append((method, url.path))
            if cluster.faults["throttle"] > 0:
                cluster.faults["throttle"] -= 1
                return self._send(
                    429,
                    status_body(
                        429, "TooManyRequests", "Too many requests, please try again later."
                    ),
                    {"Retry-After": "1"},
                )
            rule = self._refusal(method, url.path)
        if rule is not None:
            if "html" in rule:
                return self._send_raw(rule["code"], rule["html"].encode(), "text/html")
            return self._send(rule["code"], status_body(
                rule["code"], rule.get("reason", ""), rule.get("message", "")))
        if url.path.rstrip("/") == "/version":
            return self._send(
                200,
                {
                    "major": "1", "minor": "33", "gitVersion": "v1.33.0+fake",
                    "gitCommit": "0" * 40, "gitTreeState": "clean",
                    "buildDate": "2025-04-23T13:07:45Z", "goVersion": "go1.24.2",
                    "compiler": "gc", "platform": "linux/amd64",
                },
            )
        if url.path in ("/api", "/apis"):
            return self._send(200, {"kind": "APIVersions", "versions": ["v1"]})
        match = PATH.match(url.path)
        if not match or not (match["resource"] or match["ns"]):
            return self._send(
                404,
                status_body(404, "NotFound", "the server could not find the requested resource"),
            )
        ns, resource, name = match["ns"] or "", match["resource"], match["name"]
        if resource is None:  # /api/v1/namespaces/NAME
            resource, name, ns = "namespaces", ns, ""
        selector = query.get("labelSelector", [""])[0]
        if method == "GET" and not name:
            items = cluster.list(resource, ns if match["ns"] else None, selector)
            kind = CORE_RESOURCES.get(resource) or GROUP_RESOURCES.get(resource, "Object")
            return self._send(
                200,
                {
                    "kind": f"{kind}List",
                    "apiVersion": "v1",
                    "metadata": {"resourceVersion": str(cluster.version)},
                    "items": items,
                },
            )
        if method == "GET":
            return self._send(*cluster.get(resource, ns, name))
        if method == "POST":
            return self._send(*cluster.create(resource, ns, body))
        if method == "PUT":
            return self._send(*cluster.replace(resource, ns, name, body))
        if method == "PATCH":
            return self._send(*cluster.patch(resource, ns, name, body))
        if method == "DELETE":
            return self._send(*cluster.delete(resource, ns, name))
        return self._send(405, status_body(405, "MethodNotAllowed", method))

    def _faults(self, method: str, body: dict) -> None:
        faults = self.cluster.faults
        if method == "POST":
            for key in ("stuck_namespaces", "storefront_down", "certificates_pending",
                        "expired_certificates"):
                if key in body:
                    faults[key] = set(body[key])
            if "throttle" in body:
                faults["throttle"] = int(body["throttle"])
            if "refuse" in body:
                faults["refuse"] = list(body["refuse"])
            for key in ("default_certificate", "wildcard_domain"):
                if key in body:
                    faults[key] = str(body[key])
        self._send(200, {k: sorted(v) if isinstance(v, set) else v for k, v in faults.items()})


class IngressHandler(BaseHTTPRequestHandler):
    cluster: Cluster
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def do_GET(self):
        host = (self.headers.get("Host") or "").split(":")[0]
        if host in self.cluster.faults["storefront_down"]:
            code, text = 503, "Service Unavailable"
        elif host in self.cluster.ingress_hosts():
            code, text = 200, f"<html><body>Storefront of {host}</body></html>"
        else:
            code, text = 404, "404 page not found"
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class TlsIngress:
    """Picks the certificate for each TLS handshake by SNI, as an ingress
    controller does (see the module docstring)."""

    def __init__(self, cluster: Cluster, ca):
        self.cluster = cluster
        self.ca = ca
        self._contexts: dict[tuple[str, str], ssl.SSLContext] = {}
        self.context = self._context("default", "ingress.local")
        self.context.sni_callback = self._pick

    def _context(self, kind: str, host: str) -> ssl.SSLContext:
        key = (kind, host)
        if key not in self._contexts:
            if kind == "default":
                files = self.ca.self_signed(host)
            else:
                files = self.ca.issue([host], expired=kind == "expired")
            self._contexts[key] = self.ca.server_context(*files)
        return self._contexts[key]

    def _pick(self, sslobj, server_name, _context) -> None:
        host = (server_name or "").lower()
        faults = self.cluster.faults
        wildcard = faults.get("wildcard_domain", "")
        if not host:
            return
        if host in faults["expired_certificates"]:
            sslobj.context = self._context("expired", host)
        elif self.cluster.certificate_ready_for(host):
            sslobj.context = self._context("issued", host)
        elif (faults.get("default_certificate") == "wildcard" and wildcard
              and host.endswith("." + wildcard) and "." not in host[:-len(wildcard) - 1]):
            sslobj.context = self._context("issued", f"*.{wildcard}")
        else:
            sslobj.context = self._context("default", "TRAEFIK DEFAULT CERT")


class TrackingServer(ThreadingHTTPServer):
    """Remembers open connections, so a paused API can drop them like a dead
    cluster does (clients hold keep-alive connections)."""

    daemon_threads = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.connections: set = set()

    def process_request(self, request, client_address):
        self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        self.connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        for conn in list(self.connections):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class FakeKubernetes:
    """The API server and the ingress, each on its own loopback port; with a
    test CA (provisioning/tests/fakes/certs.py), an HTTPS ingress too."""

    def __init__(self, port: int = 0, ingress_port: int = 0, ca=None):
        self.cluster = Cluster()
        api_handler = type("Api", (ApiHandler,), {"cluster": self.cluster})
        ingress_handler = type("Ingress", (IngressHandler,), {"cluster": self.cluster})
        self.api = TrackingServer(("127.0.0.1", port), api_handler)
        self.api.daemon_threads = True
        self.ingress = ThreadingHTTPServer(("127.0.0.1", ingress_port), ingress_handler)
        self.ingress.daemon_threads = True
        self.port = self.api.server_address[1]
        self.ingress_port = self.ingress.server_address[1]
        self.tls_ingress = None
        if ca is not None:
            self.tls = TlsIngress(self.cluster, ca)
            self.tls_ingress = ThreadingHTTPServer(("127.0.0.1", 0), ingress_handler)
            self.tls_ingress.daemon_threads = True
            self.tls_ingress.socket = self.tls.context.wrap_socket(
                self.tls_ingress.socket, server_side=True)
        self._threads: list[threading.Thread] = []
        self._api_handler = api_handler

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ingress_url(self) -> str:
        return f"http://127.0.0.1:{self.ingress_port}"

    @property
    def tls_ingress_url(self) -> str:
        return f"https://127.0.0.1:{self.tls_ingress.server_address[1]}"

    @property
    def faults(self) -> dict:
        return self.cluster.faults

    def _servers(self) -> list:
        return [s for s in (self.api, self.ingress, self.tls_ingress) if s is not None]

    def start(self) -> FakeKubernetes:
        for server in self._servers():
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        for server in self._servers():
            server.shutdown()
            server.server_close()

    def pause(self) -> None:
        """Stop listening: clients get 'connection refused', like a dead cluster."""
        self.api.shutdown()
        self.api.server_close()
        self.api.drop_connections()

    def resume(self) -> None:
        self.api = TrackingServer(("127.0.0.1", self.port), self._api_handler)
        self.api.daemon_threads = True
        thread = threading.Thread(target=self.api.serve_forever, daemon=True)
        thread.start()

    def write_kubeconfig(self, path) -> str:
        path.write_text(kubeconfig(self.url))
        return str(path)

    # -- assertions helpers ------------------------------------------------
    def namespaces(self, selector: str = "") -> list[dict]:
        return self.cluster.list("namespaces", None, selector)

    def objects_in(self, namespace: str) -> list[str]:
        with self.cluster.lock:
            return sorted(
                f"{res}/{name}" for (res, ns, name) in self.cluster.objects if ns == namespace
            )


def kubeconfig(server: str) -> str:
    return (
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: fake\n  cluster:\n    server: {server}\n"
        "contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n"
        "current-context: fake\n"
        "users:\n- name: fake\n  user:\n    token: fake-token\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ingress-port", type=int, default=0)
    parser.add_argument("--kubeconfig", help="write a kubeconfig pointing here")
    args = parser.parse_args()
    fake = FakeKubernetes(args.port, args.ingress_port).start()
    if args.kubeconfig:
        from pathlib import Path

        fake.write_kubeconfig(Path(args.kubeconfig))
    print(json.dumps({"api": fake.url, "ingress": fake.ingress_url}), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
