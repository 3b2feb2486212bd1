"""`python -m bench --profile`: py-spy profiles of the web tier and of a worker under load.

- web: `wrk` (or the Python generator) on the webhook for 12 s; py-spy samples the gunicorn
  master and its workers (`--subprocesses`) for 8 s in the middle.
- worker: one `approver worker --burst` deciding 1,500 queued key requests; py-spy samples
  it for 6 s with `--idle` (time waiting on Redis and the Dashboard counts).

py-spy's idle detection does not work in every VM (on the one this was written on, threads
blocked in select() were sampled as running), so the summaries keep only the stacks of the
work itself: gunicorn's `handle_request`, the worker's main thread.

Prints, and writes between the profile markers of docs/performance.md, the share of samples
under the top functions (inclusive) and by package of the innermost frame (self), and
leaves the raw collapsed stacks (flamegraph input) in the work directory.
"""

from __future__ import annotations

import collections
import re
import secrets
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from approver.pipeline import enqueue, runtime
from approver.state import connection
from bench import data, decisions, ingest, procs

RATE = 200  # samples per second


def pyspy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    return found


def record(pid: int, seconds: float, out: Path, idle: bool = False,
           subprocesses: bool = False, attempts: int = 20) -> subprocess.CompletedProcess:
    """py-spy record; retried, as attaching sometimes fails to read the interpreter version."""
    argv = [pyspy(), "record", "--pid", str(pid), "--duration", str(round(seconds)),
            "--rate", str(RATE), "--format", "raw", "--full-filenames", "--output", str(out)]
    argv += ["--idle"] * idle + ["--subprocesses"] * subprocesses
    for _ in range(attempts):
        result = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
        if result.returncode == 0 and out.exists():
            return result
        time.sleep(0.05)
    raise RuntimeError(f"py-spy could not attach to {pid}:\n{result.stderr[-1500:]}")


def _short(path: str) -> str:
    for marker in ("site-packages/", str(procs.ROOT) + "/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return re.sub(r".*/lib/python3\.\d+/", "", path)


def _package(path: str) -> str:
    short = _short(path)
    if short.startswith(("approver/", "bench/")):
        return short.rsplit(".", 1)[0].replace("/", ".")
    if "site-packages/" in path:
        return short.split("/", 1)[0]
    if path.startswith("<") or not path:
        return "(native)"
    return "stdlib " + short.split("/", 1)[0].removesuffix(".py")


_OWN = ("approver/", "rq/", "flask/", "gunicorn/", "jsonschema/", "werkzeug/")
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _parse(line: str) -> tuple[list[tuple[str, str]], int]:
    stack, _, count = line.rpartition(" ")
    frames = []
    for raw in stack.split(";"):
        found = _FRAME.match(raw)
        frames.append((found["func"], found["file"]) if found else (raw, ""))
    return frames, int(count)


def summarise(path: Path, title: str, top: int = 14, keep: str | None = None) -> str:
    """Markdown: top functions by inclusive share, self share by package; stacks through
    a function named `keep` only, if given (one thread's view)."""
    total = 0
    inclusive: collections.Counter = collections.Counter()
    selfp: collections.Counter = collections.Counter()
    kinds: collections.Counter = collections.Counter()
    callers: collections.Counter = collections.Counter()
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        frames, count = _parse(line)
        frames = [f for f in frames if f[1]]  # drop "process ..."/"thread ..." roots
        if not frames or (keep and not any(func == keep for func, _ in frames)):
            continue
        total += count
        for func, file in {(f, _short(p)) for f, p in frames}:
            inclusive[(func, file)] += count
        selfp[_package(frames[-1][1])] += count
        short = [(f, _short(p)) for f, p in frames]
        what = ("Redis" if any(p.startswith("redis/") for _, p in short) else
                "Dashboard HTTP" if any(p.startswith(("requests/", "urllib3/")) for _, p in short)
                else "neither")
        kinds[what] += count
        own = next(((f, p) for f, p in reversed(short) if p.startswith(_OWN)), ("?", "?"))
        callers[(what, *own)] += count
    if not total:
        return f"**{title}**: no samples\n"
    lines = [f"**{title}** ({total:,} samples at {RATE}/s)", "",
             "| inclusive | function |", "|---:|---|"]
    shown = 0
    for (func, file), count in inclusive.most_common():
        share = count / total
        if share > 0.97:
            continue  # the roots every sample passes through
        lines.append(f"| {share:.0%} | `{func}` ({file}) |")
        shown += 1
        if shown == top:
            break
    lines += ["", "Self time by package of the innermost frame: " + ", ".join(
        f"{pkg} {count / total:.0%}" for pkg, count in selfp.most_common(10)), ""]
    lines += ["Samples inside a Redis command, a Dashboard HTTP call or neither, by the "
              "innermost caller of our own or of RQ/Flask/gunicorn: " + ", ".join(
                  f"{what} {count / total:.0%}" for what, count in kinds.most_common()), "",
              "| share | in | caller |", "|---:|---|---|"]
    lines += [f"| {count / total:.1%} | {what} | `{func}` ({file}) |"
              for (what, func, file), count in callers.most_common(top)]
    return "\n".join(lines) + "\n"


def run(quick: bool = False) -> str:
    web_seconds, worker_seconds, jobs = (3, 2, 300) if quick else (8, 6, 1500)
    parts = []
    with procs.Procs() as ps:
        print(f"[profile] workdir {ps.workdir}", file=sys.stderr)
        ps.start_redis()
        sandbox = ps.start_sandbox(data.write_seed(ps.workdir / "seed.json"))
        token = secrets.token_urlsafe(24)
        env = ps.service_env(sandbox, token)
        web = ps.start_web(env)

        # -- web tier under load --------------------------------------------------------
        out = ps.workdir / "web.raw"
        load = threading.Thread(target=ingest.measure, daemon=True, args=(
            f"{web.url}/hooks/tyk/{token}", web_seconds + 4, ps.workdir))
        load.start()
        time.sleep(1.5)
        record(web.pid, web_seconds, out, subprocesses=True)
        load.join()
        parts.append(summarise(out, "Web tier (2 gthread workers), webhook under load, "
                                    "request handling only", keep="ThreadWorker.handle_request"))
        ps.stop(web)

        # -- one worker deciding queued requests -----------------------------------------
        assert ps.redis is not None
        conn = connection.connect(ps.redis.url)
        conn.flushdb()
        sandbox.reset()
        queue = runtime.queue(conn, decisions.QUEUE)
        for request_id in sandbox.create_requests(data.specs(jobs)):
            enqueue.decision(queue, request_id, "bench", decisions.RETRY_DELAYS)
        worker = ps.start_worker(env, burst=True)
        time.sleep(1.5)  # imports, registration
        wout = ps.workdir / "worker.raw"
        record(worker.pid, worker_seconds, wout, idle=True)
        parts.append(summarise(wout, "Decision worker (SimpleWorker), its main thread, "
                                     "wall-clock samples (--idle: waits on Redis and the "
                                     "Dashboard count)", keep="BaseWorker.work"))
        procs.wait_for(lambda: not worker.alive(), 120, what="the worker to finish")
        conn.close()
    print(f"[profile] raw collapsed stacks: {ps.workdir}/{{web,worker}}.raw",
          file=sys.stderr)
    return "\n".join(["<!-- profile:begin -->", *parts, "<!-- profile:end -->"])
