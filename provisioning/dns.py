"""Does a custom domain belong to its owner, and does it point at us?

Two records prove it (issue 11):

- a TXT record ``_storeplatform-challenge.<hostname>`` holding the domain's
  verification token (only someone who controls the zone can create it);
- the hostname resolving to the platform: a CNAME to the store's platform
  host, or A/AAAA records among STORE_INGRESS_IPS (an apex name cannot be a
  CNAME).

Asked with dnspython of STORE_DNS_RESOLVERS (``ip`` or ``ip:port``; empty:
the system's resolvers). A check returns what is missing in words an owner
can act on; DNS servers that do not answer give no verdict (``unknown``),
so a flaky resolver never takes a working domain away.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dns.exception
import dns.nameserver
import dns.rdatatype
import dns.resolver
from django.conf import settings

from stores import constants as c

LIFETIME = 4.0  # seconds for one lookup, retries included


@dataclass
class Verdict:
    ok: bool
    problems: list[str] = field(default_factory=list)
    # The DNS servers did not answer: no verdict either way.
    unknown: bool = False

    @property
    def message(self) -> str:
        return " ".join(self.problems)


class _NoAnswer(Exception):
    pass


def resolver() -> dns.resolver.Resolver:
    if not settings.STORE_DNS_RESOLVERS:
        result = dns.resolver.Resolver()
    else:
        result = dns.resolver.Resolver(configure=False)
        result.nameservers = [_nameserver(entry) for entry in settings.STORE_DNS_RESOLVERS]
    result.lifetime = LIFETIME
    result.timeout = LIFETIME / 2
    return result


def _nameserver(entry: str) -> dns.nameserver.Do53Nameserver:
    """``1.1.1.1``, ``127.0.0.1:5353``, ``[::1]:5353`` or ``::1``."""
    address, port = entry, 53
    if entry.startswith("["):
        address, _, rest = entry[1:].partition("]")
        port = int(rest.lstrip(":") or 53)
    elif entry.count(":") == 1:
        address, _, port_text = entry.partition(":")
        port = int(port_text)
    return dns.nameserver.Do53Nameserver(address, port)


def _lookup(res: dns.resolver.Resolver, name: str, rdtype: str) -> list:
    """The answer's records, [] when the name or the type does not exist."""
    try:
        return list(res.resolve(name, rdtype, search=False))
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except (dns.resolver.NoNameservers, dns.exception.Timeout) as exc:
        raise _NoAnswer(str(exc)) from exc


def _text(record) -> str:
    return b"".join(record.strings).decode(errors="replace")


def _name(record) -> str:
    return record.target.to_text().rstrip(".").lower()


def check(hostname: str, token: str, platform_host: str) -> Verdict:
    """Verify ``hostname``'s TXT token and that it points at ``platform_host``
    (or at STORE_INGRESS_IPS)."""
    res = resolver()
    problems = []
    challenge = f"{c.DOMAIN_CHALLENGE_PREFIX}.{hostname}"
    try:
        texts = [_text(r) for r in _lookup(res, challenge, "TXT")]
        if not texts:
            problems.append(f"No TXT record {challenge} was found: create it with the value "
                            f"{token}.")
        elif token not in texts:
            problems.append(f"The TXT record {challenge} holds {', '.join(map(repr, texts))}, "
                            f"not the value {token}.")
        pointing = _points_at_us(res, hostname, platform_host)
        if pointing:
            problems.append(pointing)
    except _NoAnswer as exc:
        return Verdict(False, [f"The DNS servers did not answer for {hostname} ({exc}); "
                               "nothing was decided, it will be checked again."], unknown=True)
    return Verdict(not problems, problems)


def _points_at_us(res: dns.resolver.Resolver, hostname: str, platform_host: str) -> str:
    """"" when ``hostname`` points at the platform, else what to fix."""
    platform_host = platform_host.lower()
    cname = [_name(r) for r in _lookup(res, hostname, "CNAME")]
    if platform_host in cname:
        return ""
    addresses = {r.to_text() for rdtype in ("A", "AAAA") for r in _lookup(res, hostname, rdtype)}
    ours = set(settings.STORE_INGRESS_IPS)
    if addresses & ours:
        return ""
    how = f"a CNAME record {hostname} -> {platform_host}"
    if ours:
        how += f" (or A/AAAA records to {', '.join(sorted(ours))})"
    if cname:
        return f"{hostname} is a CNAME to {cname[0]}, not to the store: make it {how}."
    if addresses:
        return (f"{hostname} points at {', '.join(sorted(addresses))}, not at the platform: "
                f"make it {how}.")
    return f"{hostname} does not resolve: create {how}."
