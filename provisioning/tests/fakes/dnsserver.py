"""A real DNS server on loopback (dnslib) whose records the tests set.

It answers authoritatively, over UDP and TCP, from a dict of records the
test changes while it runs: ``dns.set("shop.example.com", "CNAME",
"acme.localtest.me")``, ``dns.remove(...)``. A name with no records is
NXDOMAIN; a name with records of another type answers NOERROR with no
answer (what dnspython calls NoAnswer), as a real server does. CNAMEs are
followed within the zone, like a recursive resolver would.
"""

from __future__ import annotations

import threading

from dnslib import QTYPE, RCODE, RR
from dnslib.server import BaseResolver, DNSLogger, DNSServer


class Zone(BaseResolver):
    def __init__(self):
        self.lock = threading.Lock()
        self.records: dict[str, list[tuple[str, str]]] = {}

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        with self.lock:
            for _ in range(8):  # follow CNAMEs, as a recursive resolver does
                records = self.records.get(name, [])
                if qtype != "CNAME" and any(t == "CNAME" for t, _ in records):
                    target = next(v for t, v in records if t == "CNAME")
                    reply.add_answer(*RR.fromZone(f"{name}. 60 CNAME {target}."))
                    name = target.rstrip(".").lower()
                    continue
                break
            if name not in self.records and not reply.rr:
                reply.header.rcode = RCODE.NXDOMAIN
                return reply
            for rtype, value in records:
                if rtype == qtype:
                    text = f'"{value}"' if rtype == "TXT" else value
                    if rtype == "CNAME":
                        text = f"{value}."
                    reply.add_answer(*RR.fromZone(f"{name}. 60 {rtype} {text}"))
        return reply


class FakeDNS:
    def __init__(self):
        self.zone = Zone()
        quiet = DNSLogger(logf=lambda *_: None)
        self.udp = DNSServer(self.zone, port=0, address="127.0.0.1", logger=quiet)
        port = self.udp.server.server_address[1]
        self.tcp = DNSServer(self.zone, port=port, address="127.0.0.1", tcp=True, logger=quiet)
        self.port = port

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> FakeDNS:
        self.udp.start_thread()
        self.tcp.start_thread()
        return self

    def stop(self) -> None:
        self.udp.stop()
        self.tcp.stop()

    def set(self, name: str, rtype: str, *values: str) -> None:
        """Replace ``name``'s records of ``rtype`` with ``values``."""
        name = name.lower()
        with self.zone.lock:
            kept = [(t, v) for t, v in self.zone.records.get(name, []) if t != rtype]
            self.zone.records[name] = kept + [(rtype, v) for v in values]

    def remove(self, name: str, rtype: str | None = None) -> None:
        name = name.lower()
        with self.zone.lock:
            kept = [(t, v) for t, v in self.zone.records.get(name, [])
                    if rtype is not None and t != rtype]
            if kept:
                self.zone.records[name] = kept
            else:
                self.zone.records.pop(name, None)
