"""What a decision costs the worker, against RQ's no-op job: deterministic proxies.

    python -m bench.cost            # 3 rounds of 300 of each, after a warm-up round
    python -m bench.cost --n 100 --rounds 1 --json

Timed runs vary by ±15 % on the shared cores; these two figures hardly do:

- Redis commands per job, by command (`INFO commandstats` before and after the burst,
  the worker's start-up and exit included, as in the bench's details line);
- the worker's CPU per job (`time.process_time()` of this process around the burst: every
  thread of the worker, none of Redis, the sandbox Dashboard or the DNS/RDAP servers,
  which run in processes of their own).

Both workers run in this process, in burst mode with the scheduler: the service's
`approver.process.worker.run` (its watchdog included) on `n` key requests queued by
`approver.pipeline.enqueue.decision` (half approved, half denied, every one applied in the
sandbox), and RQ's SimpleWorker (`Baseline`: RQ's own, but for its command channel, polled
every second) on `n` jobs of `bench.noop.noop` queued with the options
bench/decisions.py gives them. Each round starts from an empty Redis and a fresh
`Runtime`, so every round pays the same cold caches.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import multiprocessing
import os
import secrets
import statistics
import sys
import time

from rq import Queue, Retry, SimpleWorker
from rq.serializers import JSONSerializer

from approver import config, logs
from approver.pipeline import enqueue, runtime
from approver.process import worker
from approver.state import APPLIED, Store, connection
from bench import data
from bench.decisions import NOOP_QUEUE, RETRY_DELAYS, _commands
from bench.procs import Procs


class Baseline(worker.Worker):
    """RQ's SimpleWorker as `rq worker` runs it (the full bench's no-op worker), but for its
    command channel, polled every second, not every 60, as the service's is: the same
    commands, without a minute's wait at its exit. RQ's heartbeats and states are RQ's own,
    not the service's (sent at most once a second)."""

    heartbeat = SimpleWorker.heartbeat
    set_state = SimpleWorker.set_state


def _signal_servers(conn) -> None:
    """The sandbox DNS and RDAP servers, in a process of their own (their CPU is not the
    worker's); their settings go back through `conn`, then they serve until killed."""
    from approver.sandbox.signals import SignalServers

    servers = SignalServers()
    conn.send(servers.env)
    while True:
        time.sleep(3600)


def _burst(conn, run) -> tuple[dict, float]:
    """Redis commands by command and CPU seconds of this process spent in `run()`."""
    before = _commands(conn)
    cpu = time.process_time()
    run()
    cpu = time.process_time() - cpu
    return dict(_commands(conn) - before), cpu


def decisions_round(redis_url: str, sandbox, n: int) -> tuple[dict, float]:
    conn = connection.connect(redis_url)
    conn.flushdb()
    sandbox.reset()
    ids = sandbox.create_requests(data.specs(n))
    queue = runtime.queue(conn, "approver")
    for request_id in ids:
        enqueue.decision(queue, request_id, "bench", RETRY_DELAYS)
    rt = runtime.Runtime(config.from_env())
    runtime.install(rt)
    rt.rules.current()  # loaded before the burst, as `approver worker` does
    logs.setup("INFO", json_lines=True)
    try:
        spent = _burst(conn, lambda: worker.run(rt, burst=True))
    finally:
        runtime.install(None)
        _drop_our_log_handler()
    applied = sum(1 for s in Store(conn).states(ids) if s == APPLIED)
    if applied != n:
        raise RuntimeError(f"only {applied} of {n} decisions applied")
    return spent


def noop_round(conn, n: int) -> tuple[dict, float]:
    conn.flushdb()
    queue = Queue(NOOP_QUEUE, connection=conn, serializer=JSONSerializer)
    for i in range(n):
        queue.enqueue(
            "bench.noop.noop", f"{i:024x}", "bench", job_id=f"noop-{i}", unique=True,
            retry=Retry(max=len(RETRY_DELAYS), interval=list(RETRY_DELAYS)),
            job_timeout=enqueue.JOB_TIMEOUT, result_ttl=300, failure_ttl=30 * 86400,
            description=f"no-op {i}",
        )
    rq = Baseline([queue], connection=conn, serializer=JSONSerializer)
    spent = _burst(conn, lambda: rq.work(burst=True, with_scheduler=True,
                                         logging_level="INFO"))
    if queue.finished_job_registry.count != n:
        raise RuntimeError(f"only {queue.finished_job_registry.count} of {n} no-op jobs finished")
    return spent


def _drop_our_log_handler() -> None:
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not getattr(h, "approver", False)]


def _summary(rounds: list[tuple[dict, float]], n: int) -> dict:
    """Per job: commands by command (median over rounds), their sum, CPU ms (median, min)."""
    names = sorted({k for by, _ in rounds for k in by})
    by_command = {k: statistics.median(by.get(k, 0) for by, _ in rounds) / n for k in names}
    by_command = dict(sorted(by_command.items(), key=lambda kv: -kv[1]))
    cpu = [c * 1000 / n for _, c in rounds]
    return {"redis_commands": sum(by_command.values()), "redis_by_command": by_command,
            "cpu_ms": statistics.median(cpu), "cpu_ms_min": min(cpu), "cpu_ms_runs": cpu}


def measure(n: int = 300, rounds: int = 3, warmup: int = 30) -> dict:
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    servers = ctx.Process(target=_signal_servers, args=(theirs,), daemon=True)
    servers.start()
    theirs.close()  # so that recv() fails, not hangs, if the servers' process dies
    try:
        signal_env = ours.recv()
        with Procs() as ps, open(ps.workdir / "workers.log", "w") as log, \
                contextlib.redirect_stderr(log), contextlib.redirect_stdout(log):
            redis = ps.start_redis()
            sandbox = ps.start_sandbox(data.write_seed(ps.workdir / "seed.json"))
            os.environ.update(ps.service_env(sandbox, secrets.token_urlsafe(24), signal_env))
            conn = connection.connect(redis.url)
            decisions_round(redis.url, sandbox, warmup)  # imports, first connections
            noop_round(conn, warmup)
            found = {"decision": [], "noop": []}
            for _ in range(rounds):
                found["decision"].append(decisions_round(redis.url, sandbox, n))
                found["noop"].append(noop_round(conn, n))
            conn.close()
    finally:
        servers.kill()
        servers.join()
    return {k: _summary(v, n) for k, v in found.items()} | {"n": n, "rounds": rounds}


def table(found: dict) -> str:
    dec, noop = found["decision"], found["noop"]
    names = list(dict.fromkeys([*dec["redis_by_command"], *noop["redis_by_command"]]))
    lines = [f"per job, {found['n']} jobs x {found['rounds']} rounds (median)",
             f"{'command':<20}{'decision':>10}{'no-op':>10}"]
    for name in names:
        lines.append(f"{name:<20}{dec['redis_by_command'].get(name, 0):>10.2f}"
                     f"{noop['redis_by_command'].get(name, 0):>10.2f}")
    lines.append(f"{'all commands':<20}{dec['redis_commands']:>10.2f}"
                 f"{noop['redis_commands']:>10.2f}"
                 f"   ratio {dec['redis_commands'] / noop['redis_commands']:.2f}x")
    lines.append(f"{'CPU ms (median)':<20}{dec['cpu_ms']:>10.2f}{noop['cpu_ms']:>10.2f}"
                 f"   ratio {dec['cpu_ms'] / noop['cpu_ms']:.2f}x")
    lines.append(f"{'CPU ms (least)':<20}{dec['cpu_ms_min']:>10.2f}{noop['cpu_ms_min']:>10.2f}"
                 f"   ratio {dec['cpu_ms_min'] / noop['cpu_ms_min']:.2f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.cost", description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=300, help="jobs of each kind a round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args(argv)
    found = measure(args.n, args.rounds)
    print(json.dumps(found, indent=1) if args.json else table(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
