"""A sandbox DNS server and RDAP server for the demo: the sample developers' domains take
mail and were registered long ago, and nothing is asked of the network."""

from __future__ import annotations

import socket
import threading

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
from flask import Flask, jsonify

from approver.sandbox.server import SandboxServer

# Domain → its registration date; each has an MX record `mx.<domain>`.
DOMAINS = {d: "2001-01-01T00:00:00Z" for d in (
    "partner.example", "acme.partner.example", "mailinator.com", "gmail.com", "example.com",
    "corp.example")}


class DnsServer:
    """Answers MX questions for DOMAINS over UDP on 127.0.0.1; NXDOMAIN for anything else."""

    def __init__(self, domains: dict[str, str] = DOMAINS):
        self.domains = domains
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"sandbox-dns-{self.port}",
                                        daemon=True)
        self._thread.start()

    def _answer(self, data: bytes) -> bytes | None:
        try:
            query = dns.message.from_wire(data)
        except Exception:  # a datagram that is no DNS query gets no answer
            return None
        reply = dns.message.make_response(query)
        if not query.question:
            return None
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        if name not in self.domains:
            reply.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.MX:
            reply.answer.append(dns.rrset.from_text(question.name, 3600, "IN", "MX",
                                                    f"10 mx.{name}."))
        return reply.to_wire()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._sock.recvfrom(4096)
            except OSError:
                continue
            answer = self._answer(data)
            if answer is not None:
                self._sock.sendto(answer, peer)

    def shutdown(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()


def create_rdap_app(domains: dict[str, str] = DOMAINS) -> Flask:
    """An RDAP server (RFC 9083, the `domain` query only) for `domains`."""
    app = Flask("approver.sandbox.rdap")

    @app.get("/rdap/domain/<name>")
    def domain(name: str):
        registered = domains.get(name.lower())
        if registered is None:
            return jsonify({"errorCode": 404, "title": "Not Found"}), 404
        return jsonify({"objectClassName": "domain", "ldhName": name.lower(),
                        "events": [{"eventAction": "registration", "eventDate": registered}]})

    return app


class SignalServers:
    """The sandbox DNS and RDAP servers, with the settings that point the service at them."""

    def __init__(self):
        self.dns = DnsServer()
        self.rdap = SandboxServer(create_rdap_app())
        self.env = {"APPROVER_DNS_SERVERS": f"127.0.0.1:{self.dns.port}",
                    "APPROVER_RDAP_URL": f"{self.rdap.url}/rdap"}

    def shutdown(self) -> None:
        self.dns.shutdown()
        self.rdap.shutdown()
