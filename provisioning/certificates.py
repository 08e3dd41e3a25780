"""Waiting for cert-manager: a store is Ready only over valid HTTPS.

cert-manager's ingress-shim turns each annotated Ingress TLS entry of a
store's release into a Certificate named after its secretName. Until every
Certificate the release asked for is Ready, the store shows the step
"Waiting for the certificate" with the Certificate's own condition message;
when STORE_CERTIFICATE_TIMEOUT (or the operation's deadline) passes first,
the operation fails with ``certificate_not_issued`` and the Certificates,
their ACME Challenges and cert-manager's events as diagnostics.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.utils import timezone

from provisioning import errors, kube
from provisioning.operations import ACTOR, Operation
from stores import constants as c
from stores.models import Store
from stores.transitions import record_event, set_step_detail

# Time kept after the wait for the storefront probe and the final write.
PROBE_RESERVE = 60


def expected(values: dict) -> dict[str, list[str]]:
    """Certificate name -> host names, of the generated values (what the
    charts ask cert-manager for; docs/chart-contract.md)."""
    tls = values["ingress"]["tls"]
    if not tls["enabled"]:
        return {}
    wanted = {}
    if tls.get("mode") != c.TLS_WILDCARD:
        wanted[tls["secretName"]] = [values["store"]["host"]]
    for domain in values.get("domains", []):
        wanted[domain["secretName"]] = [domain["host"]]
    return wanted


def wait(op: Operation, wanted: dict[str, list[str]]) -> None:
    """Block until the Certificates named in ``wanted`` are Ready."""
    if not wanted:
        return
    store = op.store
    with op.step(c.STEP_WAITING_FOR_CERTIFICATE):
        deadline = time.monotonic() + settings.STORE_CERTIFICATE_TIMEOUT
        ends = Store.objects.filter(pk=store.id).values_list("deadline_at", flat=True).first()
        if ends is not None:
            left = (ends - timezone.now()).total_seconds() - PROBE_RESERVE
            deadline = min(deadline, time.monotonic() + max(left, 1))
        said, delay = "", 0.2
        while True:
            pending = _pending(kube.certificates(store.namespace), wanted)
            if not pending:
                return
            detail = "; ".join(f"{', '.join(wanted[name])}: {message}"
                               for name, message in pending.items())
            if detail != said:
                said = detail
                set_step_detail(store.id, op.owner, f"Certificate: {detail}")
                record_event(store.id, c.EVENT_INFO, f"Waiting for the certificate of {detail}",
                             step=c.STEP_WAITING_FOR_CERTIFICATE, actor=ACTOR)
            if time.monotonic() + delay > deadline:
                raise errors.CertificateNotIssued(
                    f"The certificate was not issued in time for {detail}",
                    details={"certificates": kube.certificate_diagnostics(
                        store.namespace, sorted(wanted))},
                    hosts=sorted({host for name in pending for host in wanted[name]}),
                )
            op.tick()
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def _pending(states: dict[str, dict], wanted: dict[str, list[str]]) -> dict[str, str]:
    """Certificate name -> why it is not Ready, for those not Ready yet."""
    pending = {}
    for name in wanted:
        state = states.get(name)
        if state is None:
            pending[name] = ("cert-manager has not created the Certificate yet (is cert-manager "
                             "installed?)")
        elif not state["ready"]:
            pending[name] = state["message"] or state["reason"] or "not Ready"
    return pending
