"""A small evaluator of Kubernetes NetworkPolicies, for the chart tests.

Given the rendered policies of a store namespace and a model of the pods
around it (labels, namespaces, named ports) it answers "may A open a
connection to B on port P?" the way the NetworkPolicy API defines it
(https://kubernetes.io/docs/concepts/services-networking/network-policies/):

- a pod is isolated for ingress (egress) when a policy in its namespace
  selects it and lists Ingress (Egress) in ``policyTypes``; an isolated pod
  accepts only what some rule of those policies allows, a pod that is not
  isolated accepts everything;
- a connection needs both ends to allow it: the source's egress and the
  destination's ingress;
- a peer is a ``podSelector`` (same namespace), a ``namespaceSelector``
  (any pod there), both (pods matching in namespaces matching), or an
  ``ipBlock`` (addresses outside the cluster, ``except`` honoured); an
  empty list of peers or ports means all;
- ports match by number or by the destination container's port name,
  protocol TCP unless said, ``endPort`` ranges included.

Traffic of pods outside the store namespace is governed by policies the
charts do not render: their egress is taken as open.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    labels: dict = field(default_factory=dict, hash=False, compare=False)
    ports: dict = field(default_factory=dict, hash=False, compare=False)  # name -> number


@dataclass(frozen=True)
class Address:
    """Something outside the cluster's pods: the internet, the API server."""

    name: str
    ip: str


def selects(selector: dict | None, labels: dict) -> bool:
    """A LabelSelector; an empty one selects everything."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


class Network:
    def __init__(self, policies: list[dict], namespace: str, namespace_labels: dict[str, dict]):
        self.policies = [p for p in policies if p.get("kind") == "NetworkPolicy"]
        self.namespace = namespace  # where the rendered policies live
        self.namespace_labels = {
            name: {"kubernetes.io/metadata.name": name, **labels}
            for name, labels in namespace_labels.items()
        }

    def _policies(self, pod: Pod, direction: str) -> list[dict]:
        if pod.namespace != self.namespace:
            return []
        found = []
        for policy in self.policies:
            spec = policy["spec"]
            types = spec.get("policyTypes") or (
                ["Ingress"] + (["Egress"] if "egress" in spec else []))
            if direction in types and selects(spec.get("podSelector"), pod.labels):
                found.append(policy)
        return found

    def _peer_matches(self, peer: dict, other, policy_namespace: str) -> bool:
        if "ipBlock" in peer:
            if not isinstance(other, Address):
                return False
            address = ipaddress.ip_address(other.ip)
            block = peer["ipBlock"]
            if address not in ipaddress.ip_network(block["cidr"]):
                return False
            return not any(address in ipaddress.ip_network(e) for e in block.get("except", []))
        if isinstance(other, Address):
            return False
        if "namespaceSelector" in peer:
            labels = self.namespace_labels.get(other.namespace, {})
            if not selects(peer["namespaceSelector"], labels):
                return False
        elif other.namespace != policy_namespace:
            return False
        return selects(peer.get("podSelector"), other.labels)

    @staticmethod
    def _port_matches(rule_ports: list[dict] | None, port: int, protocol: str,
                      destination) -> bool:
        if not rule_ports:
            return True
        for entry in rule_ports:
            if entry.get("protocol", "TCP") != protocol:
                continue
            wanted = entry.get("port")
            if wanted is None:
                return True
            if isinstance(wanted, str):
                wanted = destination.ports.get(wanted) if isinstance(destination, Pod) else None
                if wanted is None:
                    continue
            if wanted <= port <= entry.get("endPort", wanted):
                return True
        return False

    def _allowed(self, pod: Pod, other, port: int, protocol: str, direction: str,
                 destination) -> bool:
        policies = self._policies(pod, direction)
        if not policies:
            return True
        key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        for policy in policies:
            for rule in policy["spec"].get(key) or []:
                peers = rule.get(peers_key)
                if peers and not any(self._peer_matches(p, other, pod.namespace)
                                     for p in peers):
                    continue
                if self._port_matches(rule.get("ports"), port, protocol, destination):
                    return True
        return False

    def allows(self, source, destination, port: int, protocol: str = "TCP") -> bool:
        """May ``source`` connect to ``destination`` on ``port``?"""
        if isinstance(source, Pod) and not self._allowed(
                source, destination, port, protocol, "Egress", destination):
            return False
        if isinstance(destination, Pod):
            return self._allowed(destination, source, port, protocol, "Ingress", destination)
        return True

    def flows(self, sources, destinations, ports) -> set[tuple[str, str, int, str]]:
        """Every (source, destination, port, protocol) allowed among these."""
        return {
            (s.name, d.name, port, protocol)
            for s in sources for d in destinations if s != d
            for port, protocol in ports
            if self.allows(s, d, port, protocol)
        }


def pods_of(docs: list[dict], namespace: str) -> list[Pod]:
    """The pods a rendered chart runs: labels and named ports of each template."""
    pods = []
    for doc in docs:
        kind = doc.get("kind")
        if kind in ("Deployment", "StatefulSet", "Job"):
            template = doc["spec"]["template"]
        elif kind == "CronJob":
            template = doc["spec"]["jobTemplate"]["spec"]["template"]
        else:
            continue
        ports = {
            p["name"]: p["containerPort"]
            for c in template["spec"].get("containers", []) for p in c.get("ports", [])
            if "name" in p
        }
        labels = template["metadata"].get("labels", {})
        name = labels.get("app.kubernetes.io/component") or doc["metadata"]["name"]
        pods.append(Pod(name, namespace, labels, ports))
    return pods
