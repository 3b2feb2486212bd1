"""What the signal facts cost a decision: gathering them (warm caches: two Redis round trips,
no DNS or RDAP) and evaluating the shipped rules, against evaluating the same rules on the
same facts handed over ready; and how long a cold lookup may hold a worker when DNS and
RDAP never answer (the bound, `APPROVER_SIGNALS_TIMEOUT`).

Run alone: `python -m bench --only signals`.
"""

from __future__ import annotations

import copy
import socket
import statistics
import time
from types import SimpleNamespace

from approver.config import Settings
from approver.pipeline import signals
from approver.rules import FactContext, Facts, evaluate, load_rules
from approver.sandbox.signals import SignalServers
from approver.state import connection
from bench.procs import ROOT

POLICY = "64b0000000000000000000b1"
REQUEST = {"id": "bench-1", "by_user": "dev-1", "apply_policies": [POLICY],
           "fields": {"company": "Example Ltd", "use_case": "billing sync"}}
DEVELOPER = {"id": "dev-1", "email": "grace@example.com", "inactive": False}
POLICIES = {POLICY: {"id": POLICY, "name": "Free", "tags": ["free"]}}
COLD_BOUND = 0.5


def _context() -> FactContext:
    return FactContext(request=dict(REQUEST), developer=dict(DEVELOPER),
                       policies=POLICIES, billing=None, extra={"portal": "classic"})


def _per_decision_ms(fn, seconds: float) -> float:
    count, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        for _ in range(20):
            fn()
        count += 20
    return (time.perf_counter() - began) / count * 1000


def measure(redis_url: str, seconds: float = 1.0, runs: int = 3) -> dict:
    """{"with_ms", "without_ms", "added_ms" (medians), "cold_s" (the longest cold gather)}."""
    servers = SignalServers()
    conn = connection.connect(redis_url)
    try:
        host, port = servers.env["APPROVER_DNS_SERVERS"].split(":")
        settings = Settings(redis_url=redis_url, rules_path=ROOT / "rules",
                            dns_servers=((host, int(port)),),
                            rdap_url=servers.env["APPROVER_RDAP_URL"])
        rt = SimpleNamespace(redis=conn, settings=settings)
        ruleset = load_rules(ROOT / "rules")
        warm = _context()
        signals.gather(rt, "bench-1", "dev-1", warm)  # fills the DNS and RDAP caches
        decision = evaluate(ruleset, Facts(warm))
        if decision.rule_id != "free-tier-for-company-addresses":
            raise RuntimeError(f"the bench request should reach the free tier: {decision}")
        gathered = warm.extra["signals"]

        def with_facts():
            ctx = _context()
            signals.gather(rt, "bench-1", "dev-1", ctx)
            evaluate(ruleset, Facts(ctx))

        def without():
            ctx = _context()
            ctx.extra["signals"] = copy.copy(gathered)
            evaluate(ruleset, Facts(ctx))

        pairs = [(_per_decision_ms(with_facts, seconds), _per_decision_ms(without, seconds))
                 for _ in range(runs)]
        cold = _cold(conn, redis_url)
    finally:
        servers.shutdown()
    with_ms = statistics.median(p[0] for p in pairs)
    without_ms = statistics.median(p[1] for p in pairs)
    return {"with_ms": with_ms, "without_ms": without_ms, "added_ms": with_ms - without_ms,
            "runs": pairs, "cold_s": cold, "bound_s": COLD_BOUND}


def _cold(conn, redis_url: str, tries: int = 3) -> float:
    """The longest gather, caches emptied, against a DNS and an RDAP server that never answer."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as dns, socket.socket() as rdap:
        dns.bind(("127.0.0.1", 0))
        rdap.bind(("127.0.0.1", 0))
        rdap.listen(16)  # connections are taken by the kernel, and never answered
        settings = Settings(redis_url=redis_url, rules_path=ROOT / "rules",
                            dns_servers=(("127.0.0.1", dns.getsockname()[1]),),
                            rdap_url=f"http://127.0.0.1:{rdap.getsockname()[1]}/rdap",
                            signals_timeout=COLD_BOUND)
        rt = SimpleNamespace(redis=conn, settings=settings)
        longest = 0.0
        for i in range(tries):
            conn.delete(*conn.keys("approver:signals:cache:*") or ["none"])
            ctx = _context()
            began = time.perf_counter()
            signals.gather(rt, f"bench-cold-{i}", "dev-1", ctx)
            longest = max(longest, time.perf_counter() - began)
            if "unknown" not in ctx.extra["signals"]["developer.email_domain_accepts_mail"]:
                raise RuntimeError("a silent DNS server should leave the fact unknown")
    return longest


def rows(r: dict) -> list[tuple[str, ...]]:
    """The table rows (measure, value, baseline, ratio, target, met)."""
    added = r["added_ms"]
    return [
        ("signals: decision cost with warm caches, ms (gather + evaluate)",
         f"{r['with_ms']:.3f}", f"{r['without_ms']:.3f} (facts handed over)",
         f"+{added:.3f} ms", "< 1 ms more", "yes" if added < 1 else "**no**"),
        ("signals: cold lookups, DNS and RDAP silent, longest gather, s",
         f"{r['cold_s']:.2f}", f"bound {r['bound_s']:g}", "", "≤ bound + 0.1",
         "yes" if r["cold_s"] <= r["bound_s"] + 0.1 else "**no**"),
    ]
