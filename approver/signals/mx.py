"""Whether a domain accepts mail: MX records, else an A/AAAA fallback (RFC 5321 §5.1), and
not a null MX (RFC 7505), asked of the configured DNS servers with a deadline."""

from __future__ import annotations

import time

import dns.exception
import dns.name
import dns.nameserver
import dns.resolver

from approver.signals import Answer, Unavailable

# How long answers are kept: the record's TTL within these bounds; "no such domain" and
# "no records" (whose TTL the SOA would give) for NEGATIVE_TTL.
MIN_TTL = 60
MAX_TTL = 86400
NEGATIVE_TTL = 300


def resolver(servers: tuple[tuple[str, int], ...]) -> dns.resolver.Resolver:
    """A resolver asking `servers` ((ip, port) pairs), or the system's when there are none."""
    if not servers:
        return dns.resolver.Resolver()
    found = dns.resolver.Resolver(configure=False)
    found.nameservers = [dns.nameserver.Do53Nameserver(ip, port) for ip, port in servers]
    return found


def _ttl(seconds: int) -> int:
    return max(MIN_TTL, min(int(seconds), MAX_TTL))


def _ask(res: dns.resolver.Resolver, domain: str, rdtype: str, deadline: float):
    left = deadline - time.monotonic()
    if left <= 0:
        raise Unavailable(f"DNS: no time left to ask {domain} {rdtype}")
    try:
        return res.resolve(domain, rdtype, lifetime=left, raise_on_no_answer=False,
                           search=False)
    except dns.resolver.NXDOMAIN:
        raise
    except dns.exception.Timeout:
        raise Unavailable(f"DNS: {domain} {rdtype} timed out ({left:.1f}s left)") from None
    except dns.resolver.NoNameservers:
        raise Unavailable(f"DNS: no server answered {domain} {rdtype} (SERVFAIL or "
                          "refused)") from None
    except dns.exception.DNSException as exc:
        raise Unavailable(f"DNS: no usable answer for {domain} {rdtype} "
                          f"({type(exc).__name__})") from None


def accepts_mail(res: dns.resolver.Resolver, domain: str, deadline: float) -> Answer:
    """True if `domain` has MX records (or, lacking any, A/AAAA ones) and no null MX.

    Unavailable when the servers are down, slow or answer what makes no sense (a null MX
    beside other MX records, RFC 7505 §3).
    """
    try:
        answer = _ask(res, domain, "MX", deadline)
    except dns.resolver.NXDOMAIN:
        return Answer(False, f"DNS: {domain} does not exist (NXDOMAIN)", NEGATIVE_TTL)
    if answer.rrset:
        hosts = sorted((r.preference, r.exchange) for r in answer.rrset)
        nulls = [h for h in hosts if h[1] == dns.name.root]
        if nulls and len(nulls) < len(hosts):
            raise Unavailable(f"DNS: {domain} has a null MX beside other MX records")
        if nulls:
            return Answer(False, f"DNS: {domain} has a null MX (RFC 7505): it takes no mail",
                          _ttl(answer.rrset.ttl))
        return Answer(True, f"DNS: {domain} MX {hosts[0][1].to_text(omit_final_dot=True)}",
                      _ttl(answer.rrset.ttl))
    for rdtype in ("A", "AAAA"):
        try:
            answer = _ask(res, domain, rdtype, deadline)
        except dns.resolver.NXDOMAIN:
            return Answer(False, f"DNS: {domain} does not exist (NXDOMAIN)", NEGATIVE_TTL)
        if answer.rrset:
            return Answer(True, f"DNS: {domain} has no MX; its {rdtype} record takes mail "
                          "(RFC 5321 §5.1)", _ttl(answer.rrset.ttl))
    return Answer(False, f"DNS: {domain} has no MX, A or AAAA record", NEGATIVE_TTL)
