"""`python -m bench` (`make bench`): start what it needs, measure, print one table, write the doc.

    python -m bench            # the full run (< 5 minutes on 2 cores)
    python -m bench --quick    # a short smoke run of every phase (figures not meaningful)
    python -m bench --profile  # py-spy profiles of the web tier and a worker under load
    python -m bench --no-doc   # print the table only
    python -m bench --only backlog   # the backlog rows alone (10,000 pending; ~5½ minutes)
    python -m bench --only signals   # what the signal facts cost a decision (seconds)

Everything runs on 127.0.0.1 on free ports and is torn down on exit, Ctrl-C included.
See docs/performance.md for the method and the latest figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import platform
import secrets
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from approver.pipeline import enqueue, runtime
from approver.state import connection
from bench import backlog, decisions, ingest, latency, procs, rules, signals
from bench.data import write_seed
from bench.rss import PeakTracker, cpu_seconds, peak_mb

DOC = procs.ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
PBEGIN, PEND = "<!-- profile:begin -->", "<!-- profile:end -->"
BBEGIN, BEND = "<!-- backlog:begin -->", "<!-- backlog:end -->"


@dataclass(frozen=True)
class Plan:
    runs: int = 3
    ingest_seconds: float = 10
    sandbox_seconds: float = 3
    decisions: int = 600
    noop_jobs: int = 1500
    rate: float = 100
    latency_seconds: float = 10
    rules_seconds: float = 1.0
    light_rate: float = 25
    light_seconds: float = 4
    sandbox_server: str = "gunicorn"
    backlog: int = 10_000
    backlog_workers: tuple[int, ...] = (1, 2, 4)
    ceiling_requests: int = 1_500  # drained by 4 workers under the default ceiling
    ceiling_rate: float = 100.0  # APPROVER_DASHBOARD_RATE's default


QUICK = Plan(runs=1, ingest_seconds=2, sandbox_seconds=1, decisions=60, noop_jobs=150,
             latency_seconds=2, rules_seconds=0.2, light_seconds=2, backlog=300,
             backlog_workers=(1, 2), ceiling_requests=150, ceiling_rate=50.0)


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=procs.ROOT,
                                capture_output=True, text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "approver", "rules"],
                               cwd=procs.ROOT, capture_output=True, text=True,
                               timeout=5).stdout.strip()
        if commit and dirty:
            commit += " + uncommitted changes under approver/ or rules/"
    except (OSError, subprocess.SubprocessError):
        commit = ""
    from importlib.metadata import version

    return {
        "nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
        "kernel": platform.release(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "versions": ", ".join(f"{p} {version(p)}" for p in
                              ("flask", "gunicorn", "rq", "redis", "jsonschema", "requests")),
        "redis_server": _redis_version(),
        "wrk": _wrk_version(),
    }


def _redis_version() -> str:
    from approver.process.embedded_redis import redis_executable

    try:
        out = subprocess.run([redis_executable(), "--version"], capture_output=True,
                             text=True, timeout=5).stdout
        return out.split(" v=")[1].split()[0] if " v=" in out else out.strip()
    except (OSError, IndexError, subprocess.SubprocessError):
        return "?"


def _wrk_version() -> str:
    if not ingest.wrk_path():
        return ""
    out = subprocess.run([ingest.wrk_path(), "-v"], capture_output=True, text=True, timeout=5)
    return (out.stdout + out.stderr).split("\n")[0].split(" [")[0]


# -- the phases -----------------------------------------------------------------------------

def run(plan: Plan) -> dict:
    results: dict = {"plan": plan, "machine": machine(), "generator": ingest.generator()}
    peaks = PeakTracker()

    log("rules: evaluations per second for 10/100/1,000 rules")
    results["rules"] = rules.measure(plan.rules_seconds, plan.runs)
    log(f"rules: evaluations per second for {rules.STEPS_SIZE} rules with steps")
    results["rules"]["steps"] = rules.measure_steps(plan.rules_seconds, plan.runs)

    with procs.Procs() as ps:
        log(f"starting Redis, the sandbox Dashboard, the web tier and the bare app "
            f"(workdir {ps.workdir})")
        ps.start_redis()
        log("signals: a decision's cost with warm caches, and a cold lookup's bound")
        results["signals"] = signals.measure(ps.redis.url, plan.rules_seconds, plan.runs)
        sandbox = ps.start_sandbox(write_seed(ps.workdir / "seed.json"), plan.sandbox_server)
        token = secrets.token_urlsafe(24)
        env = ps.service_env(sandbox, token)
        web = ps.start_web(env)
        bare = ps.start_bare()
        hook_path = f"/hooks/tyk/{token}"

        # Ingest: alternate bare and webhook runs so that drift hits both alike.
        conn = _redis(ps)
        ing = {"bare": [], "web": []}
        log("ingest warm-up: 2 s each, not counted")
        for proc in (bare, web):
            ingest.measure(proc.url + hook_path, 2, ps.workdir)
        conn.flushdb()
        for i in range(plan.runs):
            for name, proc in (("bare", bare), ("web", web)):
                log(f"ingest run {i + 1}/{plan.runs}: {name}, {plan.ingest_seconds:.0f} s")
                kids = proc.children()
                before = _cpu([*kids, ps.redis.process.pid])
                result = ingest.measure(proc.url + hook_path, plan.ingest_seconds, ps.workdir)
                after = _cpu([*kids, ps.redis.process.pid])
                result["queued"] = runtime.queue(conn, decisions.QUEUE).count
                result["cpu_us_web"] = _per(after[:-1], before[:-1], result["requests"])
                result["cpu_us_redis"] = _per(after[-1:], before[-1:], result["requests"])
                ing[name].append(result)
                peaks.sample(*proc.children())
                conn.flushdb()  # the queued jobs of this run; no worker is running
        results["ingest"] = ing
        results["rss_web"] = peaks.max(web.children())
        results["rss_bare"] = peaks.max(bare.children())
        results["rss_web_master"] = peak_mb(web.pid)
        ps.stop(bare)

        log(f"sandbox Dashboard capacity: GET a policy, {plan.sandbox_seconds:.0f} s")
        results["sandbox"] = ingest.sandbox_capacity(sandbox.url, sandbox.secret,
                                                     plan.sandbox_seconds, ps.workdir)

        dec, noop = [], []
        for i in range(plan.runs):
            log(f"decisions run {i + 1}/{plan.runs}: one worker, {plan.decisions} key requests")
            dec.append(decisions.decisions_run(ps, sandbox, env, plan.decisions, peaks))
            log(f"no-op run {i + 1}/{plan.runs}: one RQ worker, {plan.noop_jobs} jobs")
            noop.append(decisions.noop_run(ps, plan.noop_jobs, peaks))
        results["decisions"], results["noop"] = dec, noop
        results["rss_noop"] = peaks.max([r["worker_pid"] for r in noop])

        log("latency: two workers, webhooks at a fixed rate")
        conn.flushdb()
        # Each worker queues a reconciler pass as it starts unless one was queued within the
        # interval: mark one queued, so no pass decides the requests before their webhooks.
        conn.set(enqueue.RECONCILE_DUE, "1", ex=int(env["APPROVER_RECONCILE_INTERVAL"]))
        workers = [ps.start_worker(env) for _ in range(2)]
        time.sleep(1.0)  # let them import and register
        lat = []
        for i in range(plan.runs):
            log(f"latency run {i + 1}/{plan.runs}: {plan.rate:.0f}/s for "
                f"{plan.latency_seconds:.0f} s")
            lat.append(latency.latency_run(ps, sandbox, web.url + hook_path, plan.rate,
                                           plan.latency_seconds))
            peaks.sample(*(w.pid for w in workers), *web.children())
        results["latency"] = lat
        light = []
        for i in range(plan.runs):
            log(f"light-load latency run {i + 1}/{plan.runs}: {plan.light_rate:.0f}/s for "
                f"{plan.light_seconds:.0f} s")
            light.append(latency.latency_run(ps, sandbox, web.url + hook_path, plan.light_rate,
                                             plan.light_seconds))
        results["light"] = light
        results["rss_worker"] = peaks.max(
            [w.pid for w in workers] + [r["worker_pid"] for r in dec])
        results["rss_web"] = peaks.max(web.children())
        conn.close()
        for proc in (*workers, web):
            ps.stop(proc)
        results["backlog"] = backlog_phase(plan, ps, sandbox, env)
    return results


def run_backlog(plan: Plan) -> dict:
    """The backlog phase alone (`--only backlog`)."""
    results: dict = {"plan": plan, "machine": machine()}
    with procs.Procs() as ps:
        log(f"starting Redis and the sandbox Dashboard (workdir {ps.workdir})")
        ps.start_redis()
        sandbox = ps.start_sandbox(write_seed(ps.workdir / "seed.json"), plan.sandbox_server)
        results["backlog"] = backlog_phase(plan, ps, sandbox,
                                           ps.service_env(sandbox, secrets.token_urlsafe(24)))
    return results


def backlog_phase(plan: Plan, ps: procs.Procs, sandbox, env: dict) -> dict:
    runs = []
    for workers in plan.backlog_workers:
        log(f"backlog: {plan.backlog:,} pending, {workers} worker(s), ceiling out of reach")
        runs.append(backlog.backlog_run(ps, sandbox, env, plan.backlog, workers, 100000))
    log(f"backlog: {plan.ceiling_requests:,} pending, 4 workers, ceiling "
        f"{plan.ceiling_rate:.0f} calls/s")
    ceiling = backlog.backlog_run(ps, sandbox, env, plan.ceiling_requests, 4,
                                  plan.ceiling_rate)
    return {"runs": runs, "ceiling": ceiling, "load": _load()}


def _load() -> str:
    """The machine's load while measuring (other sessions share it)."""
    try:
        one, five, _ = Path("/proc/loadavg").read_text().split()[:3]
    except (OSError, ValueError):
        return "unknown"
    return f"load average {one} (1 min), {five} (5 min) on {os.cpu_count()} cores"


def _cpu(pids: list[int]) -> list[float | None]:
    return [cpu_seconds(pid) for pid in pids]


def _per(after: list, before: list, count: int) -> float | None:
    """Microseconds of CPU per request, summed over processes."""
    if not count or None in after or None in before:
        return None
    return (sum(after) - sum(before)) * 1e6 / count


def _redis(ps: procs.Procs):
    assert ps.redis is not None
    return connection.connect(ps.redis.url)


# -- the table ------------------------------------------------------------------------------

def _n(value, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def _ok(flag) -> str:
    return "n/a" if flag is None else ("yes" if flag else "**no**")


def table(r: dict) -> str:
    plan: Plan = r["plan"]
    web = {k: median([x[k] for x in r["ingest"]["web"]]) for k in ("rps", "p50_ms", "p99_ms")}
    bare = {k: median([x[k] for x in r["ingest"]["bare"]]) for k in ("rps", "p50_ms", "p99_ms")}
    ingest_ratio = web["rps"] / bare["rps"] if web["rps"] and bare["rps"] else None
    dec = median([x["rate"] for x in r["decisions"]])
    noop = median([x["rate"] for x in r["noop"]])
    dec_ratio = dec / noop if dec and noop else None
    calls = median([x["calls_per_decision"] for x in r["decisions"]])
    lat = {k: median([x[k] for x in r["latency"]]) for k in ("p50_ms", "p95_ms", "p99_ms")}
    light = {k: median([x[k] for x in r["light"]]) for k in ("p50_ms", "p95_ms", "p99_ms")}
    rl = r["rules"]["sizes"]
    rows = [
        ("ingest: webhook req/s (2 web processes)", _n(web["rps"]),
         f"{_n(bare['rps'])} (bare Flask 202)", _ratio(ingest_ratio), "≥ 0.60x",
         _ok(ingest_ratio >= 0.6 if ingest_ratio else None)),
        ("ingest: p50 / p99 latency, ms", f"{_n(web['p50_ms'], 1)} / {_n(web['p99_ms'], 1)}",
         f"{_n(bare['p50_ms'], 1)} / {_n(bare['p99_ms'], 1)}", "", "", ""),
        ("decisions/s, one worker process", _n(dec), f"{_n(noop)} (RQ no-op job)",
         _ratio(dec_ratio), "≥ 0.50x", _ok(dec_ratio >= 0.5 if dec_ratio else None)),
        _at_most("web CPU per webhook, µs", _of(r["ingest"]["web"], "cpu_us_web"),
                 _of(r["ingest"]["bare"], "cpu_us_web"), "bare Flask 202", 900, 0),
        _at_most("worker CPU per decision, ms", _of(r["decisions"], "cpu_ms_worker"),
                 _of(r["noop"], "cpu_ms_worker"), "RQ no-op job", 2.0, 2, ratio=True),
        _at_most("Redis commands per decision", _of(r["decisions"], "redis_commands"),
                 _of(r["noop"], "redis_commands"), "RQ no-op job", 1.3, 1, ratio=True),
        _at_most("gunicorn master peak RSS, MB", r.get("rss_web_master"), None, "", 60, 1),
        ("Dashboard calls per decision; sandbox ceiling req/s", _n(calls, 1),
         f"{_n(r['sandbox']['rps'])} (GET, keep-alive, {plan.sandbox_server})", "", "", ""),
        (f"webhook sent → applied, ms, p50 / p95 / p99 ({plan.rate:.0f}/s, 2 workers)",
         f"{_n(lat['p50_ms'], 1)} / {_n(lat['p95_ms'], 1)} / {_n(lat['p99_ms'], 1)}", "", "",
         "p50 ≤ 25, p99 ≤ 100",
         _ok(lat["p50_ms"] <= 25 and lat["p99_ms"] <= 100
             if lat["p50_ms"] is not None and lat["p99_ms"] is not None else None)),
        (f"same, light load ({plan.light_rate:.0f}/s)",
         f"{_n(light['p50_ms'], 1)} / {_n(light['p95_ms'], 1)} / {_n(light['p99_ms'], 1)}",
         "", "", "", ""),
        *[(f"rule evaluations/s, {size:,} rules", _n(rl[size]["rate"]), "", "",
           "≥ 20,000" if size == 100 else "",
           _ok(rl[size]["rate"] >= 20000) if size == 100 else "")
          for size in rules.SIZES],
        (f"rule evaluations/s, {rules.STEPS_SIZE} rules with steps",
         _n(r["rules"]["steps"]["rate"]), "", "", "≥ 20,000",
         _ok(r["rules"]["steps"]["rate"] >= 20000)),
        *signals.rows(r["signals"]),
        ("peak RSS, web worker process, MB", _n(r["rss_web"], 1),
         f"{_n(r['rss_bare'], 1)} (bare app worker)", "", "≤ 80",
         _ok(r["rss_web"] <= 80 if r["rss_web"] else None)),
        ("peak RSS, decision worker process, MB", _n(r["rss_worker"], 1),
         f"{_n(r['rss_noop'], 1)} (RQ no-op worker)", "", "≤ 100",
         _ok(r["rss_worker"] <= 100 if r["rss_worker"] else None)),
    ]
    head = ("measure", "tyk-approver", "baseline, same run", "ratio", "target", "met")
    lines = ["| " + " | ".join(head) + " |", "|---|---:|---:|---:|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _of(items: list[dict], key: str):
    """The median of `key` over the runs that have it; None if none has."""
    return median([x.get(key) for x in items])


def _at_most(name: str, value, base, base_name: str, limit: float, digits: int,
             ratio: bool = False) -> tuple:
    """A row whose figure (or its ratio to the baseline's) must not exceed `limit`."""
    measured = value / base if ratio and value is not None and base else (
        None if ratio else value)
    return (name, _n(value, digits), f"{_n(base, digits)} ({base_name})" if base_name else "",
            _ratio(measured) if ratio else "",
            f"≤ {limit:g}x" if ratio else f"≤ {limit:,g}",
            _ok(measured <= limit if measured is not None else None))


def _med(items: list[dict], key: str, digits: int = 0) -> str:
    return _n(median([x.get(key) for x in items]), digits)


def _ratio(value) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def _by_command(run: dict) -> str:
    return ", ".join(f"{name} {count:.1f}" for name, count in run["redis_by_command"].items()
                     if count >= 0.05)


def details(r: dict) -> str:
    """Every run's figures, so medians can be checked."""
    def runs(items, key, digits=0):
        return ", ".join(_n(x[key], digits) for x in items)

    ing, lat, sizes = r["ingest"], r["latency"], r["rules"]["sizes"]
    lines = [
        f"- ingest req/s per run: webhook {runs(ing['web'], 'rps')}; "
        f"bare {runs(ing['bare'], 'rps')}; non-2xx/socket errors: webhook "
        f"{sum(x['errors'] for x in ing['web'])}, bare {sum(x['errors'] for x in ing['bare'])}; "
        f"jobs queued by the webhook runs: {runs(ing['web'], 'queued')} "
        f"(of {runs(ing['web'], 'requests')} requests)",
        f"- ingest CPU per request (median): web workers "
        f"{_n(median([x['cpu_us_web'] for x in ing['web']]))} µs (bare: "
        f"{_n(median([x['cpu_us_web'] for x in ing['bare']]))} µs), Redis "
        f"{_n(median([x['cpu_us_redis'] for x in ing['web']]))} µs; the load generator "
        "shares the same cores",
        f"- decisions/s per run: {runs(r['decisions'], 'rate', 1)} "
        f"({r['decisions'][0]['jobs']} key requests each, half approved, half denied, all "
        f"applied); no-op jobs/s per run: {runs(r['noop'], 'rate', 1)}",
        f"- CPU per decision (median): worker {_med(r['decisions'], 'cpu_ms_worker', 2)} ms "
        f"(busy {_med(r['decisions'], 'worker_busy', 2)} of the time), sandbox Dashboard "
        f"{_med(r['decisions'], 'cpu_ms_sandbox', 2)} ms, Redis "
        f"{_med(r['decisions'], 'cpu_ms_redis', 2)} ms; per no-op job: worker "
        f"{_med(r['noop'], 'cpu_ms_worker', 2)} ms (busy {_med(r['noop'], 'worker_busy', 2)}), "
        f"Redis {_med(r['noop'], 'cpu_ms_redis', 2)} ms",
        f"- Redis commands per decision (worker start-up and exit included): "
        f"{_med(r['decisions'], 'redis_commands', 1)}; per no-op job: "
        f"{_med(r['noop'], 'redis_commands', 1)}",
        f"- Redis commands per decision by command (first run): "
        f"{_by_command(r['decisions'][0])}; per no-op job: {_by_command(r['noop'][0])}",
        "- latency per run, p50 / p99 ms: "
        + "; ".join(f"{_n(x['p50_ms'], 1)} / {_n(x['p99_ms'], 1)}" for x in lat)
        + f"; worst {_n(max(x['max_ms'] or 0 for x in lat), 1)} ms. "
        f"Offered {_n(median([x['offered_rps'] for x in lat]), 1)}/s; webhook answered in "
        f"p50 {_n(median([x['webhook_p50_ms'] for x in lat]), 1)} / p99 "
        f"{_n(median([x['webhook_p99_ms'] for x in lat]), 1)} ms; sender lag p99 "
        f"{_n(median([x['send_lag_p99_ms'] for x in lat]), 1)} ms; "
        f"{sum(x['applied'] for x in lat)} of {sum(x['sent'] for x in lat)} applied, "
        f"{sum(x['non_202'] for x in lat)} not answered 202",
        "- light-load latency per run, p50 / p99 ms: "
        + "; ".join(f"{_n(x['p50_ms'], 1)} / {_n(x['p99_ms'], 1)}" for x in r["light"]),
        "- rules per run (evaluations/s): "
        + "; ".join(f"{size:,} rules: " + ", ".join(_n(v) for v in sizes[size]["runs"])
                    for size in rules.SIZES)
        + f"; `Facts.from_values` alone: {_n(r['rules']['facts_rate'])}/s",
        f"- gunicorn master peak RSS: {_n(r['rss_web_master'], 1)} MB",
    ]
    return "\n".join(lines)


def commands(r: dict) -> str:
    plan: Plan = r["plan"]
    py = ".venv/bin/python"
    wrk_cmd = r["ingest"]["web"][0]["command"]
    conf = procs.GUNICORN_CONF
    lines = [
        f"{py} -m bench{' --quick' if plan.runs == 1 else ''}   # all of the below",
        "# services (free loopback ports; Redis: approver.process.embedded_redis, AOF everysec)",
        (f"{py} -m approver sandbox --bind 127.0.0.1:PORT --secret S --seed SEED"
         if plan.sandbox_server == "werkzeug" else
         f"{py} -m gunicorn --worker-class gthread --workers 1 --threads 8 "
         "--bind 127.0.0.1:PORT --no-control-socket "
         "\"approver.sandbox:create_app(secret='S', seed='SEED')\"")
        + "  # SEED: seed.json + 3,000 generated developers",
        f"{py} -m approver web --bind 127.0.0.1:PORT --workers {procs.WEB_WORKERS} "
        f"--config {conf}",
        f"{py} -m gunicorn --config {conf} --bind 127.0.0.1:PORT "
        f"--workers {procs.WEB_WORKERS} bench.bare_app:app",
        "# ingest, each of webhook and bare, alternately, "
        f"{plan.runs}x (Lua script from bench/ingest.py)" if r["generator"] == "wrk" else
        f"# ingest: Python closed loop (bench/loadgen.py), {plan.runs}x each",
        wrk_cmd,
        "# sandbox ceiling",
        f"wrk -t1 -c{ingest.CONNECTIONS} -d{plan.sandbox_seconds:.0f}s "
        "-H 'authorization: S' http://127.0.0.1:PORT/api/portal/policies/<Free>",
        f"# decisions, {plan.runs}x: {plan.decisions} key requests queued by "
        "approver.pipeline.enqueue.decision, then",
        f"{py} -m approver worker --burst",
        f"# no-op, {plan.runs}x: {plan.noop_jobs} jobs of bench.noop.noop (unique, retry, "
        "result_ttl 300: bench/decisions.py)",
        f"{py} -m rq.cli worker --url REDIS --worker-class rq.worker.SimpleWorker "
        "--serializer rq.serializers.JSONSerializer --with-scheduler bench-noop --burst",
        f"# latency, {plan.runs}x: 2 x `{py} -m approver worker`, "
        f"bench.loadgen.open_loop at {plan.rate:.0f}/s for {plan.latency_seconds:.0f} s "
        f"(after a 1 s warm-up); then {plan.light_rate:.0f}/s for {plan.light_seconds:.0f} s",
    ]
    return "\n".join(lines)


def backlog_table(r: dict) -> str:
    b = r["backlog"]
    rows = []
    for x in b["runs"]:
        # Issue 27's target for a backlog of 10,000 with 2 workers: drained in 40 s.
        target = (f"; target ≤ 40 s: {_ok(x['drain_s'] <= 40)}"
                  if x["n"] == 10_000 and x["workers"] == 2 else "")
        rows.append((f"{x['n']:,} pending, {x['workers']} worker(s): drain s; decisions/s",
                     f"{_n(x['drain_s'], 1)}; {_n(x['decisions_s'], 1)}",
                     f"{_n(x['calls']):} calls ({_n(x['calls_per_decision'], 2)} each), "
                     f"peak {x['peak_calls_s']}/s{target}"))
    x = b["runs"][0]
    mb = 1024 * 1024
    rows.append(("Redis used_memory, MB: empty; all queued; all decided",
                 f"{_n(x['memory_before'] / mb, 1)}; {_n(x['memory_queued'] / mb, 1)}; "
                 f"{_n(x['memory_after'] / mb, 1)}",
                 f"{_n(x['bytes_per_decided'])} bytes per decided request (record "
                 f"{_n(x['record_bytes'])}, log entry {_n(x['log_entry_bytes'])}, "
                 f"{x['log_entries']:,} entries; target ≤ 4,000: "
                 f"{_ok(x['bytes_per_decided'] <= 4000)})"))
    for name, what in (("first", "finds and queues all"), ("queued", "all already queued"),
                       ("decided", "all decided")):
        p = x["passes"][name]
        rows.append((f"reconciler pass at {p['pending']:,} pending ({what})",
                     f"{_n(p['seconds'], 1)} s",
                     f"{_n(p['calls'])} Dashboard calls, {_n(p['commands'])} Redis commands, "
                     f"{p['queued']:,} queued"))
    c = b["ceiling"]
    rows.append((f"ceiling {c['rate']:.0f} calls/s: {c['n']:,} pending, 4 workers",
                 f"{_n(c['drain_s'], 1)} s; {_n(c['decisions_s'], 1)}/s",
                 f"peak {c['peak_calls_s']} calls in 1 s; {_n(c['calls'] / c['drain_s'], 1)}/s "
                 "on average"))
    lines = ["| backlog | figure | details |", "|---|---:|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def render_backlog(r: dict) -> str:
    m, plan = r["machine"], r["plan"]
    return "\n".join([
        BBEGIN,
        f"Measured {m['date']} at commit {m['commit']} on {m['nproc']} cores ({m['cpu']}); "
        f"redis-server {m['redis_server']}; {r['backlog']['load']} at the end of the phase.",
        "Drain rows: the ceiling out of reach (`APPROVER_DASHBOARD_RATE=100000`); Tyk's page "
        "size 10 (the sandbox's, Tyk's default). Re-run alone: `.venv/bin/python -m bench "
        "--only backlog`.",
        "",
        backlog_table(r),
        "",
        f"Plan: {plan.backlog:,} pending with {', '.join(map(str, plan.backlog_workers))} "
        f"worker(s); the ceiling row {plan.ceiling_requests:,} pending.",
        BEND,
    ])


def render(r: dict) -> str:
    m = r["machine"]
    gen = ("wrk" if r["generator"] == "wrk" else "Python (`bench/loadgen.py`; wrk not installed)")
    return "\n".join([
        BEGIN,
        f"Measured {m['date']} at commit {m['commit']} on {m['nproc']} cores ({m['cpu']}), "
        f"Linux {m['kernel']}, Python {m['python']}; {m['versions']}; "
        f"redis-server {m['redis_server']}"
        + (f"; {m['wrk']}" if m["wrk"] else "") + ".",
        f"Ingest load generator: {gen}. Medians of {r['plan'].runs} runs.",
        "",
        table(r),
        "",
        details(r),
        "",
        "The exact commands (`PORT`, `S`, `REDIS`, `SEED` are chosen per run):",
        "",
        "```sh",
        commands(r),
        "```",
        END,
    ])


def write_block(begin: str, end: str, block: str) -> None:
    """Replace the marked block of docs/performance.md (or append it), keeping the rest."""
    text = DOC.read_text() if DOC.exists() else "# Performance\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(text)


def signals_table(plan: Plan) -> str:
    """The signals rows alone (`--only signals`), on a Redis of their own."""
    with procs.Procs() as ps:
        found = signals.measure(ps.start_redis().url, plan.rules_seconds, plan.runs)
    head = ("measure", "tyk-approver", "baseline, same run", "ratio", "target", "met")
    lines = ["| " + " | ".join(head) + " |", "|---|---:|---:|---:|---|---|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in signals.rows(found)])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a short smoke run of every phase")
    p.add_argument("--profile", action="store_true",
                   help="profile the web tier and a worker under load with py-spy instead")
    p.add_argument("--no-doc", action="store_true", help="do not write docs/performance.md")
    p.add_argument("--sandbox", choices=("gunicorn", "werkzeug"), default="gunicorn",
                   help="serve the sandbox Dashboard under gunicorn (default) or werkzeug")
    p.add_argument("--only", choices=("backlog", "signals"),
                   help="run one phase alone (backlog: 10,000 pending, 1/2/4 workers; "
                        "signals: what the signal facts cost a decision)")
    args = p.parse_args(argv)
    began = time.monotonic()
    try:
        if args.profile:
            from bench import profile

            block = profile.run(quick=args.quick)
            print(block)
            if not args.no_doc and not args.quick:
                write_block(PBEGIN, PEND, block)
        else:
            plan = dataclasses.replace(QUICK if args.quick else Plan(),
                                       sandbox_server=args.sandbox)
            if args.only == "signals":
                print("\n" + signals_table(plan))
                return 0
            if args.only == "backlog":
                results = run_backlog(plan)
            else:
                results = run(plan)
                print("\n" + table(results) + "\n\n" + details(results))
            print("\n" + backlog_table(results))
            if not args.no_doc and not args.quick:
                if args.only != "backlog":
                    write_block(BEGIN, END, render(results))
                write_block(BBEGIN, BEND, render_backlog(results))
                log(f"wrote {DOC.relative_to(procs.ROOT)}")
    except KeyboardInterrupt:
        log("interrupted; everything started was stopped")
        return 130
    log(f"done in {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
