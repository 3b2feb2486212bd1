"""Scale-out on real processes: two web tiers and three workers against one Redis.

Two `approver web` tiers (separate gunicorn masters on two ports, 2 processes each), three
`approver worker` processes, one Redis and the sandbox Dashboard. A burst of 120 key
requests: most have their webhook delivered to both web tiers (some twice to one of them),
concurrently from threads; every eighth has no webhook at all (lost), so only a reconciler
finds it. `approver reconcile --once` passes run during the burst, beside the workers' own
reconciler (every 2 s). Every request must end final and decided once, each approve or deny
carried out exactly once in the Dashboard, the decision log's hash chain intact with three
concurrent writers, no lock left, and the work spread over the three workers.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
import requests

from tests.faults.conftest import (
    EXPECTED,
    ROOT,
    assert_applied_once,
    developer_map,
    developers,
    run_threads,
)

pytestmark = pytest.mark.faults

SHAPE = {"webs": 2, "workers": 3}
LOST_EVERY = 8  # every eighth request: no webhook, only a reconciler can find it
BURST_SECONDS = 3.0  # deliveries are spread over this long, overlapping the reconcilers
RECONCILE_PASSES = 4  # `approver reconcile --once`, started 0.5 s apart during the burst
SEED = 20240601

DECIDED = re.compile(r"^key request (\S+) decided (\w+) by ")
APPLIED = re.compile(r"^key request (\S+): (\w+) applied in Tyk$")
PERIODIC = re.compile(r"^reconciler: (\d+) pending, (\d+) queued")


def approver(stack, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run one `approver` command against the stack; its completed process."""
    return subprocess.run(
        [sys.executable, "-m", "approver", *args], env=stack.env, cwd=ROOT,
        capture_output=True, text=True, timeout=timeout, check=False,
    )


def worker_messages(proc) -> list[str]:
    """The messages of a worker's JSON log lines (other lines, e.g. RQ's own, skipped)."""
    messages = []
    for line in proc.output().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("msg"), str):
            messages.append(entry["msg"])
    return messages


def per_worker(stack, pattern: re.Pattern) -> dict[str, list[tuple[str, str]]]:
    """(request id, outcome) of each log line matching `pattern`, per worker process."""
    return {
        w.name: [m.groups() for m in map(pattern.match, worker_messages(w)) if m]
        for w in stack.workers
    }


@pytest.mark.parametrize("stack", [SHAPE], indirect=True, ids=["2-web-tiers-3-workers"])
def test_two_web_tiers_three_workers_burst_applied_exactly_once(stack):
    assert len(stack.hook_urls) == 2 and len(stack.workers) == 3
    stack.set_webhook(None)  # this test is Tyk: it delivers (or loses) every webhook
    emails = developers(40, 40, 40)
    created = stack.create(emails)
    ids = [r["id"] for r in created]
    developer_of = developer_map(created, emails)
    lost = {r["id"] for n, r in enumerate(created) if n % LOST_EVERY == LOST_EVERY - 1}
    delivered = [r for r in created if r["id"] not in lost]
    # Each delivered request goes to both tiers, every fourth one a third time to one of
    # them; each delivery at its own moment of the burst (sent in that order, from threads).
    deliveries = [(r, tier) for r in delivered for tier in (0, 1)]
    deliveries += [(r, (n // 4) % 2) for n, r in enumerate(delivered) if n % 4 == 0]
    rng = random.Random(SEED)
    deliveries = sorted(((rng.uniform(0, BURST_SECONDS), r, tier) for r, tier in deliveries),
                        key=lambda d: d[0])

    go = threading.Event()
    sessions = threading.local()

    def deliver(item):
        at, request, tier = item
        go.wait(10)
        time.sleep(max(0.0, started + at - time.monotonic()))
        if not hasattr(sessions, "s"):
            sessions.s = requests.Session()
        seen = stack.post_webhook(request, sessions.s, retry_for=10, url=stack.hook_urls[tier])
        return tier, request["id"], seen[-1][0], len(seen)

    def reconcile_once(n):
        go.wait(10)
        time.sleep(0.5 * n)
        return approver(stack, "reconcile", "--once")

    passes: dict[str, list] = {}
    reconcilers = threading.Thread(
        target=lambda: passes.setdefault(
            "done", run_threads(reconcile_once, range(RECONCILE_PASSES), RECONCILE_PASSES)),
        daemon=True)
    reconcilers.start()
    started = time.monotonic() + 0.05
    go.set()
    answers = run_threads(deliver, deliveries, 16)
    burst_seconds = time.monotonic() - started
    reconcilers.join(40)
    assert not reconcilers.is_alive(), "the reconcile --once passes hung"

    # Both web tiers took their share, and answered every delivery 202.
    by_tier = Counter((tier, status) for tier, _, status, _ in answers)
    print(f"{len(deliveries)} deliveries of {len(delivered)} requests ({len(lost)} lost) "
          f"in {burst_seconds:.2f}s; answers by tier: {dict(sorted(by_tier.items()))}; "
          f"503 retries: {sum(n - 1 for *_, n in answers)}")
    assert {status for _, _, status, _ in answers} == {202}, by_tier
    for tier in (0, 1):
        reached = {i for t, i, _, _ in answers if t == tier}
        assert reached == {r["id"] for r in delivered}, f"tier {tier} missed deliveries"
    results = passes["done"]
    assert [p.returncode for p in results] == [0] * RECONCILE_PASSES, [p.stderr for p in results]
    queued_by_passes = [len(json.loads(p.stdout.strip().splitlines()[-1])["queued"])
                        for p in results]

    took = stack.wait_final(ids, 40)
    final_seconds = time.monotonic() - started

    # Exactly once: outcomes as the rules say, one successful approve/delete per approve/deny
    # and none for review, the Dashboard agreeing, no lock left (assert_applied_once).
    approves, deletes = assert_applied_once(stack, created, developer_of)
    outcomes = Counter(EXPECTED[developer_of[i]] for i in ids)
    assert sum(approves.values()) == outcomes["approve"] == 40
    assert sum(deletes.values()) == outcomes["deny"] == 40
    triggers = Counter(stack.store.state(i)["trigger"] for i in ids)
    lost_triggers = Counter(stack.store.state(i)["trigger"] for i in lost)
    assert set(lost_triggers) == {"reconciler"}, lost_triggers  # no webhook: reconciler only

    # One "decided" entry per request in the decision log, read with the CLI.
    listed = approver(stack, "decisions", "list", "--json", "--limit", "100000")
    assert listed.returncode == 0, listed.stderr
    entries = [json.loads(line) for line in listed.stdout.splitlines() if line.strip()]
    decided = Counter(e["request_id"] for e in entries if e["event"] == "decided")
    assert decided == dict.fromkeys(ids, 1), {i: n for i, n in decided.items() if n != 1}
    # Three workers appended to the log concurrently: its hash chain is still whole.
    verified = approver(stack, "decisions", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith(f"ok: {len(entries)} entries"), verified.stdout
    assert stack.locks() == []

    # The work was spread: every worker decided and applied some; no request twice.
    decided_by = per_worker(stack, DECIDED)
    applied_by = per_worker(stack, APPLIED)
    everywhere = Counter(i for rows in decided_by.values() for i, _ in rows)
    assert everywhere == dict.fromkeys(ids, 1), "the worker logs disagree with the decision log"
    applied_everywhere = Counter(i for rows in applied_by.values() for i, _ in rows)
    assert applied_everywhere == {i: 1 for i in ids if EXPECTED[developer_of[i]] != "review"}
    per_worker_figures = {name: (len(decided_by[name]), len(applied_by[name]))
                          for name in decided_by}
    periodic = {name: len(rows) for name, rows in per_worker(stack, PERIODIC).items()}
    print(f"{len(ids)} requests all final {final_seconds:.1f}s after the burst began "
          f"({took:.1f}s wait after the burst); decided by trigger {dict(triggers)}; "
          f"reconcile --once passes queued {queued_by_passes}; the workers' own "
          f"reconciler passes {periodic}; "
          f"(decided, applied) per worker {per_worker_figures}; "
          f"decision log {len(entries)} entries, chain intact")
    assert all(applied for _, applied in per_worker_figures.values()), per_worker_figures
    assert all(w.alive() for w in stack.workers), [w.name for w in stack.workers]
