"""Ingest: requests per second and latency of the webhook endpoint vs a bare Flask 202.

Load: `wrk -t1 -c8` when wrk is installed (a Lua script posts a Tyk-shaped ~1.3 KB
key_request_event with a fresh key request id per request, so every request really
enqueues a job); else the Python closed-loop generator in bench/loadgen.py.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
from pathlib import Path

from bench import data, loadgen

CONNECTIONS = 8
MARK = "BENCH_JSON "

_LUA = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["User-Agent"] = "Tyk-Hookshot"
local prefix = [==[PREFIX]==]
local suffix = [==[SUFFIX]==]
local run = "RUN"
local n = 0
local threads = 0
tid = 0

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

function request()
  n = n + 1
  -- A Tyk ObjectId (24 hex digits), as the web tier accepts: run, thread, count.
  return wrk.format(nil, nil, nil,
                    prefix .. run .. string.format("%02x%012x", tid, n) .. suffix)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"mean_us": %.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
"""


def wrk_path() -> str | None:
    return shutil.which("wrk")


def generator() -> str:
    """Which load generator this machine will use."""
    return "wrk" if wrk_path() else "python"


def _lua_script(workdir: Path) -> Path:
    marker = "@@ID@@"
    body = data.webhook_body(marker).decode()
    prefix, suffix = body.split(marker)
    script = (_LUA.replace("PREFIX", prefix).replace("SUFFIX", suffix)
              .replace('"RUN"', json.dumps(secrets.token_hex(5))))
    path = workdir / "webhook.lua"
    path.write_text(script)
    return path


def _run_wrk(url: str, seconds: float, workdir: Path) -> dict:
    argv = [wrk_path(), "-t1", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s",
            "--timeout", "5s", "-s", str(_lua_script(workdir)), url]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30,
                         check=True).stdout
    line = next((ln for ln in out.splitlines() if ln.startswith(MARK)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    raw = json.loads(line[len(MARK):])
    errors = raw["connect"] + raw["read"] + raw["write"] + raw["status"] + raw["timeout"]
    return {
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "requests": raw["requests"],
        "errors": errors,
        "command": " ".join(["wrk", *argv[1:-2], "bench-webhook.lua",
                             re.sub(r"//[^/]+/hooks/tyk/.*", "//127.0.0.1:PORT/hooks/tyk/TOKEN",
                                    url)]),
    }


def _run_python(url: str, seconds: float) -> dict:
    template = data.webhook_template()
    run = secrets.token_hex(5)
    result = loadgen.closed_loop(
        url, lambda n: data.webhook_body(f"{run}{n:014x}", template), CONNECTIONS, seconds
    ).to_dict()
    result["command"] = (f"bench.loadgen.closed_loop: {CONNECTIONS} threads, "
                         f"{seconds:.0f} s, new connection per request")
    return result


def measure(url: str, seconds: float, workdir: Path) -> dict:
    """One bounded load run against `url`: rps, p50/p99 ms, errors, the command used."""
    if wrk_path():
        return _run_wrk(url, seconds, workdir)
    return _run_python(url, seconds)


def sandbox_capacity(sandbox_url: str, secret: str, seconds: float, workdir: Path) -> dict:
    """GET one policy from the sandbox Dashboard, keep-alive, 8 connections: its ceiling."""
    url = f"{sandbox_url}/api/portal/policies/{data.FREE_POLICY}"
    if wrk_path():
        out = subprocess.run(
            [wrk_path(), "-t1", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s",
             "-H", f"authorization: {secret}", url],
            capture_output=True, text=True, timeout=seconds + 30, check=True,
        ).stdout
        found = re.search(r"Requests/sec:\s+([\d.]+)", out)
        return {"rps": float(found.group(1)) if found else None}
    import time

    import requests
    count = 0
    with requests.Session() as session:
        stop = time.perf_counter() + seconds
        began = time.perf_counter()
        while time.perf_counter() < stop:
            session.get(url, headers={"authorization": secret}, timeout=5)
            count += 1
    return {"rps": count / (time.perf_counter() - began)}
