"""A backlog: a first deploy against thousands of pending key requests.

Per run: the sandbox holds `n` pending key requests (a third each approved, denied and
left for review by the shipped rules) and Redis is empty. `approver reconcile --once`
finds and queues them (the first pass); a second pass runs with all of them queued (the
reconciler's cost per pass at that backlog); then `workers` `approver worker --burst`
processes drain the queue, timed from their start to the last request's final state in
Redis; a third pass runs once everything is decided (the reviewed third stays pending in
Tyk). Redis memory (`INFO memory` used_memory) is read before the requests are queued and
after the drain, the queue empty again: the difference is what the decided requests keep.

The ceiling on Dashboard calls (`APPROVER_DASHBOARD_RATE`) is set by the caller: out of
reach to measure the workers, or at a value to check that it holds (the peak number of
calls the sandbox logged in any one-second window).
"""

from __future__ import annotations

import json
import subprocess
import threading
import time

from approver.state import LOG_KEY, PREFIX, SETTLED_STATES, Store, connection
from bench import data
from bench.decisions import _commands
from bench.procs import PY, ROOT, Procs, Sandbox, tail, wait_for

REVIEW_EMAIL = "carol@gmail.com"  # seed.json: free mail, left to a human (rule free-mail)


def specs(n: int) -> list[tuple[str, str]]:
    """n (developer, policy) pairs: approve, deny, review in turn; developers reused."""
    emails = (lambda i: data.approve_email(i % data.DEVELOPERS),
              lambda i: data.deny_email(i % data.DEVELOPERS), lambda i: REVIEW_EMAIL)
    return [(emails[i % 3](i // 3), data.FREE_POLICY) for i in range(n)]


def create(sandbox: Sandbox, pairs: list[tuple[str, str]], threads: int = 4) -> list[str]:
    """Create the key requests in the sandbox from a few threads; their ids."""
    chunks = [pairs[i::threads] for i in range(threads)]
    found: list[list[str]] = [[] for _ in chunks]
    workers = [threading.Thread(target=lambda i=i: found[i].extend(
        sandbox.create_requests(chunks[i]))) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return [i for part in found for i in part]


def used_memory(conn) -> int:
    return int(conn.info("memory")["used_memory"])


def reconcile_pass(env: dict, sandbox: Sandbox, conn) -> dict:
    """One `approver reconcile --once`: seconds, Dashboard calls, Redis commands, result."""
    calls, commands = len(sandbox.calls("", "/api/")), _commands(conn).total()
    started = time.monotonic()
    done = subprocess.run([PY, "-m", "approver", "--log-level", "WARNING", "reconcile",
                           "--once"], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=600, check=False)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"reconcile --once failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {"seconds": seconds, "calls": len(sandbox.calls("", "/api/")) - calls,
            "commands": _commands(conn).total() - commands - 1, "pending": result["pending"],
            "queued": len(result["queued"]), "already_queued": result["already_queued"],
            "decided": result["decided"]}


def peak_calls_per_second(calls: list[dict]) -> int:
    """The most Dashboard calls the sandbox logged within any one second."""
    times = sorted(c["at"] for c in calls)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def backlog_run(procs: Procs, sandbox: Sandbox, env: dict, n: int, workers: int,
                rate: float) -> dict:
    """Drain a backlog of n pending requests with `workers` workers under `rate` calls/s."""
    assert procs.redis is not None
    env = {**env, "APPROVER_DASHBOARD_RATE": str(rate)}
    conn = connection.connect(procs.redis.url)
    conn.flushdb()
    sandbox.reset()
    ids = create(sandbox, specs(n))
    conn.config_set("appendonly", "no")  # no AOF rewrite buffers in the memory figures
    conn.execute_command("MEMORY", "PURGE")
    memory_before = used_memory(conn)
    first = reconcile_pass(env, sandbox, conn)
    second = reconcile_pass(env, sandbox, conn)
    queued_memory = used_memory(conn)
    before_calls = len(sandbox.calls("", "/api/"))
    started = time.time()
    procs_ = [procs.start_worker(env, burst=True) for _ in range(workers)]
    st = Store(conn)

    def drained():
        return all(s in SETTLED_STATES for s in st.states(ids))

    try:
        wait_for(drained, timeout=120 + n / 5, interval=0.25, what=f"{n} requests decided")
    except Exception:
        raise RuntimeError(f"backlog not drained:\n{tail(procs_[0].log)}") from None
    drain = time.time() - started
    for proc in procs_:
        procs.stop(proc, timeout=30)
    calls = [c for c in sandbox.calls("", "/api/")[before_calls:] if c["at"] >= started]
    conn.execute_command("MEMORY", "PURGE")
    memory_after = used_memory(conn)
    third = reconcile_pass(env, sandbox, conn)
    sample = ids[:: max(1, n // 60)]  # every outcome alike
    record = sum(conn.memory_usage(f"{PREFIX}request:{i}", samples=0) or 0
                 for i in sample) / len(
        sample)
    log_len = conn.xlen(LOG_KEY)
    log_bytes = conn.memory_usage(LOG_KEY, samples=0) or 0
    conn.config_set("appendonly", "yes")
    conn.close()
    return {
        "n": n, "workers": workers, "rate": rate, "drain_s": drain, "decisions_s": n / drain,
        "calls": len(calls), "calls_per_decision": len(calls) / n,
        "peak_calls_s": peak_calls_per_second(calls),
        "memory_before": memory_before, "memory_queued": queued_memory,
        "memory_after": memory_after,
        "bytes_per_decided": (memory_after - memory_before) / n,
        "record_bytes": record, "log_entry_bytes": log_bytes / log_len if log_len else None,
        "log_entries": log_len, "passes": {"first": first, "queued": second,
                                           "decided": third},
    }
