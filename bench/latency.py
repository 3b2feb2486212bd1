"""Latency from webhook sent to decision applied at the Dashboard, at a fixed offered rate.

The Python open-loop sender (bench/loadgen.py) posts one webhook per key request at
`rate`/s, due at t0 + i/rate whatever the answers (no coordinated omission), and notes the
wall-clock time just before connecting. A request's "applied" time is `applied_at` in its
Redis state, which the worker writes right after the Dashboard answered the approve (PUT)
or delete (DELETE). applied_at has millisecond resolution (truncated), so each latency
may read up to 1 ms short.
"""

from __future__ import annotations

import time
from datetime import datetime

from approver.state import FINAL_STATES, PREFIX, Store, connection
from bench import data, loadgen
from bench.procs import Procs, Sandbox, wait_for

WARMUP_SECONDS = 1.0


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def latency_run(procs: Procs, sandbox: Sandbox, hook_url: str, rate: float,
                seconds: float) -> dict:
    """One run: warm-up, then `seconds` of webhooks at `rate`/s; latency percentiles (ms)."""
    assert procs.redis is not None
    conn = connection.connect(procs.redis.url)
    st = Store(conn)
    sandbox.reset()
    warm = max(1, int(rate * WARMUP_SECONDS))
    count = max(1, int(rate * seconds))
    ids = sandbox.create_requests(data.specs(warm + count))
    template = data.webhook_template()
    bodies = [(i, data.webhook_body(i, template)) for i in ids]
    loadgen.open_loop(hook_url, bodies[:warm], rate)
    _wait_final(st, ids[:warm], timeout=30)
    sent = loadgen.open_loop(hook_url, bodies[warm:], rate)
    measured = ids[warm:]
    _wait_final(st, measured, timeout=30 + seconds)
    pipe = conn.pipeline(transaction=False)
    for request_id in measured:
        pipe.hget(f"{PREFIX}request:{request_id}", "applied_at")
    applied = [v.decode() if v else None for v in pipe.execute()]
    conn.close()
    latencies = [
        (_epoch(at) - rec.sent) * 1000 for rec, at in zip(sent, applied, strict=True) if at
    ]
    lag = [(rec.sent - rec.due) * 1000 for rec in sent]
    answered = [rec.answered_ms for rec in sent]
    bad = sum(1 for rec in sent if rec.status != 202)
    return {
        "p50_ms": loadgen.percentile(latencies, 50),
        "p95_ms": loadgen.percentile(latencies, 95),
        "p99_ms": loadgen.percentile(latencies, 99),
        "max_ms": max(latencies) if latencies else None,
        "applied": len(latencies),
        "sent": len(sent),
        "non_202": bad,
        "offered_rps": (len(sent) - 1) / ((sent[-1].due - sent[0].due) or 1),
        "webhook_p50_ms": loadgen.percentile(answered, 50),
        "webhook_p99_ms": loadgen.percentile(answered, 99),
        "send_lag_p99_ms": loadgen.percentile(lag, 99),
    }


def _wait_final(st: Store, ids: list[str], timeout: float) -> None:
    def done() -> bool:
        return all(s in FINAL_STATES for s in st.states(ids))

    try:
        wait_for(done, timeout, interval=0.1, what="every decision applied")
    except TimeoutError:
        states = st.states(ids)
        missing = sum(1 for s in states if s not in FINAL_STATES)
        raise TimeoutError(f"{missing} of {len(ids)} requests not decided in {timeout:.0f}s") \
            from None
    time.sleep(0.05)
