"""A local DNS server (dnslib, over UDP) and a local RDAP server (HTTP) on 127.0.0.1, each
answering from a table the test can change, and able to go silent or answer nonsense."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

from dnslib import AAAA, MX, QTYPE, RCODE, RR, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

OLD = "2001-01-01T00:00:00Z"


def days_ago(days: int) -> str:
    """An RDAP date `days` ago."""
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def default_zone() -> dict[str, dict]:
    """Domain → records (`mx`: [(preference, host)], `a`, `aaaa`) and its `registered` date."""
    zone = {d: {"mx": [(10, f"mx.{d}")], "registered": OLD}
            for d in ("acme.partner.example", "partner.example", "mailinator.com",
                      "gmail.com", "example.com", "corp.example", "somewhere.example")}
    zone.update({
        "nomx.example": {"registered": OLD},
        "afallback.example": {"a": ["192.0.2.1"], "registered": OLD},
        "nullmx.example": {"mx": [(0, ".")], "registered": OLD},
        "young.example": {"mx": [(10, "mx.young.example")], "registered": days_ago(5)},
        "fresh-burner.example": {"mx": [(10, "mx.fresh-burner.example")], "registered": OLD},
        "busy.example": {"mx": [(10, "mx.busy.example")], "registered": OLD},
    })
    return zone


class Faults:
    """What the fakes do instead of answering: `hang` (until released) or `nonsense`."""

    def __init__(self):
        self.dns: str | None = None
        self.rdap: str | None = None
        self.release = threading.Event()
        self.queries: list[tuple[str, str]] = []

    def reset(self):
        self.dns = self.rdap = None
        self.release.set()
        self.release = threading.Event()
        self.queries.clear()


class _Zone(BaseResolver):
    def __init__(self, servers):
        self.servers = servers

    def resolve(self, request, handler):
        faults = self.servers.faults
        name = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        faults.queries.append((name, qtype))
        if faults.dns == "hang":
            faults.release.wait(30)
        reply = request.reply()
        entry = self.servers.zone.get(name)
        if entry is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        if faults.dns == "nonsense" and qtype == "MX":
            reply.add_answer(RR(name, QTYPE.MX, rdata=MX(".", 0), ttl=300))
            reply.add_answer(RR(name, QTYPE.MX, rdata=MX(f"mx.{name}", 10), ttl=300))
            return reply
        for preference, host in entry.get("mx", []) if qtype == "MX" else []:
            reply.add_answer(RR(name, QTYPE.MX, rdata=MX(host, preference), ttl=600))
        for ip in entry.get("a", []) if qtype == "A" else []:
            reply.add_answer(RR(name, QTYPE.A, rdata=A(ip), ttl=600))
        for ip in entry.get("aaaa", []) if qtype == "AAAA" else []:
            reply.add_answer(RR(name, QTYPE.AAAA, rdata=AAAA(ip), ttl=600))
        return reply


class SignalServers:
    """Both fakes, sharing one zone table and one set of faults."""

    def __init__(self):
        self.zone = default_zone()
        self.faults = Faults()
        self.dns = DNSServer(_Zone(self), address="127.0.0.1", port=0,
                             logger=DNSLogger("-request,-reply,-truncated,-error,-recv,-send,"
                                              "-data"))
        self.dns_port = self.dns.server.server_address[1]
        self.http = make_server("127.0.0.1", 0, self._rdap, threaded=True)
        self.rdap_url = f"http://127.0.0.1:{self.http.server_port}/rdap"

    @property
    def dns_servers(self) -> tuple[tuple[str, int], ...]:
        return (("127.0.0.1", self.dns_port),)

    @Request.application
    def _rdap(self, request):
        prefix = "/rdap/domain/"
        if request.path == "/bootstrap/dns.json":  # as IANA's: TLDs → RDAP base URLs
            https = self.rdap_url.replace("http://", "https://") + "/"
            body = {"version": "1.0", "services": [
                [["example", "test"], ["http://plain.invalid/", https]],
                [["io"], ["https://rdap.invalid/"]]]}
            return Response(json.dumps(body), 200, content_type="application/json")
        if not request.path.startswith(prefix):
            return Response("not found", 404)
        if self.faults.rdap == "hang":
            self.faults.release.wait(30)
        if self.faults.rdap == "nonsense":
            return Response("<html>maintenance</html>", 200, content_type="text/html")
        entry = self.zone.get(request.path[len(prefix):].lower())
        if entry is None or "registered" not in entry:
            return Response('{"errorCode": 404}', 404, content_type="application/rdap+json")
        body = ('{"objectClassName": "domain", "events": [{"eventAction": "registration", '
                f'"eventDate": "{entry["registered"]}"}}]}}')
        return Response(body, 200, content_type="application/rdap+json")

    def start(self) -> SignalServers:
        self.dns.start_thread()
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        return self

    def reset(self) -> None:
        self.zone = default_zone()
        self.faults.reset()

    def close(self) -> None:
        self.faults.release.set()
        self.dns.stop()
        self.dns.server.server_close()
        self.http.shutdown()
        self.http.server_close()
