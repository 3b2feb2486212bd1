"""Start and stop the processes a benchmark needs, on free loopback ports, always torn down.

Everything is started through `Procs`, a context manager that stops every process it
started (SIGTERM, then SIGKILL), by its own pid, whatever happens in between.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from approver.process.embedded_redis import EmbeddedRedis, free_port

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
HOST = "127.0.0.1"
# gunicorn settings shared by the webhook and the bare endpoint: the service's own config
# module (sync workers, access log, redacting logger), 2 workers.
GUNICORN_CONF = "python:approver.web.gunicorn_conf"
WEB_WORKERS = 2


class StartError(RuntimeError):
    """A process did not come up."""


@dataclass
class Proc:
    """A started process: its Popen, the URL it serves (if any) and its log file."""

    name: str
    popen: subprocess.Popen
    log: Path
    url: str = ""

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def children(self) -> list[int]:
        """Pids of this process's direct children (gunicorn's workers)."""
        return children_of(self.pid)


def children_of(pid: int) -> list[int]:
    """Direct children of `pid`, read from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after the last ")".
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append(int(entry))
    return sorted(found)


@dataclass
class Procs:
    """Owns every process a benchmark run starts; `close()` (or `with`) stops them all."""

    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="approver-bench-")))
    procs: list[Proc] = field(default_factory=list)
    redis: EmbeddedRedis | None = None
    _signals: object = None

    def __enter__(self) -> Procs:
        # A Ctrl-C or a SIGTERM to `make` still tears everything down.
        signal.signal(signal.SIGTERM, _raise_interrupt)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- generic ---------------------------------------------------------------------------
    def spawn(self, name: str, argv: list[str], env: dict | None = None, url: str = "") -> Proc:
        log = self.workdir / f"{name}-{len(self.procs)}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                argv, cwd=ROOT, env={**os.environ, **(env or {})},
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            )
        proc = Proc(name, popen, log, url)
        self.procs.append(proc)
        return proc

    def stop(self, proc: Proc, timeout: float = 10.0) -> None:
        """SIGTERM, wait, SIGKILL: only this process (gunicorn stops its own workers)."""
        if proc.alive():
            proc.popen.send_signal(signal.SIGTERM)
            try:
                proc.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait()
        if proc in self.procs:
            self.procs.remove(proc)

    def close(self) -> None:
        for proc in reversed(list(self.procs)):
            try:
                self.stop(proc)
            except Exception as exc:  # keep tearing down the rest
                print(f"bench: could not stop {proc.name} ({proc.pid}): {exc}", file=sys.stderr)
        if self.redis:
            self.redis.close()
            self.redis = None
        if self._signals is not None:
            self._signals.shutdown()
            self._signals = None

    def wait_http(self, proc: Proc, path: str, timeout: float = 30.0,
                  headers: dict | None = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not proc.alive():
                raise StartError(f"{proc.name} exited at start:\n{tail(proc.log)}")
            try:
                if requests.get(proc.url + path, headers=headers, timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise StartError(f"{proc.name} did not answer {path} in {timeout:.0f}s:\n{tail(proc.log)}")

    # -- the pieces ------------------------------------------------------------------------
    def start_redis(self) -> EmbeddedRedis:
        """A private redis-server; AOF everysec as in production."""
        directory = self.workdir / "redis"
        directory.mkdir(exist_ok=True)
        self.redis = EmbeddedRedis(directory=directory).start()
        return self.redis

    def start_sandbox(self, seed: Path, server: str = "gunicorn") -> Sandbox:
        """The sandbox Dashboard in its own process, no webhook URL.

        server="gunicorn": the sandbox app under gunicorn, one gthread worker (the state is
        in that one process), 8 threads, keep-alive: about 3x the calls per CPU second of
        werkzeug's threaded server, so the simulated Dashboard takes less of the cores the
        service is measured on. server="werkzeug": `approver sandbox` as shipped.
        """
        port = free_port()
        secret = secrets.token_hex(16)
        if server == "werkzeug":
            argv = [PY, "-m", "approver", "--log-level", "WARNING", "sandbox",
                    "--bind", f"{HOST}:{port}", "--secret", secret, "--seed", str(seed)]
        else:
            argv = [PY, "-m", "gunicorn", "--worker-class", "gthread", "--workers", "1",
                    "--threads", "8", "--bind", f"{HOST}:{port}", "--no-control-socket",
                    f"approver.sandbox:create_app(secret={secret!r}, seed={str(seed)!r})"]
        proc = self.spawn("sandbox", argv, url=f"http://{HOST}:{port}")
        self.wait_http(proc, "/_sandbox/faults", headers={"authorization": secret})
        # gunicorn's worker answers the calls; its master only waits.
        serving = proc.pid if server == "werkzeug" else wait_children(proc, 1)[0]
        return Sandbox(proc, secret, server, serving)

    def service_env(self, sandbox: Sandbox, token: str,
                    signal_env: dict | None = None) -> dict:
        """The service's settings; the signal servers' (`signal_env`) else started here."""
        assert self.redis is not None
        return {
            "APPROVER_DASHBOARD_URL": sandbox.url,
            "APPROVER_DASHBOARD_SECRET": sandbox.secret,
            "APPROVER_REDIS_URL": self.redis.url,
            "APPROVER_WEBHOOK_TOKENS": token,
            "APPROVER_SECRET_KEY": secrets.token_urlsafe(32),
            "APPROVER_RULES": str(ROOT / "rules"),
            # Keep the periodic reconciler out of the measurements (next pass: next midnight).
            "APPROVER_RECONCILE_INTERVAL": "86400",
            # The shared ceiling on Dashboard calls out of reach: the figures measure the
            # service (its token-bucket script included), not the ceiling.
            "APPROVER_DASHBOARD_RATE": "100000",
            # The signal facts ask the sandbox's DNS and RDAP servers: no network.
            **(self.signal_servers().env if signal_env is None else signal_env),
        }

    def signal_servers(self):
        """The sandbox DNS and RDAP servers, started once, stopped by `close()`."""
        from approver.sandbox.signals import SignalServers

        if self._signals is None:
            self._signals = SignalServers()
        return self._signals

    def start_web(self, env: dict) -> Proc:
        """`approver web` under gunicorn, 2 workers, the service's gunicorn config (gthread)."""
        port = free_port()
        proc = self.spawn("web", [
            PY, "-m", "approver", "web", "--bind", f"{HOST}:{port}",
            "--workers", str(WEB_WORKERS), "--config", GUNICORN_CONF,
        ], env=env, url=f"http://{HOST}:{port}")
        self.wait_http(proc, "/healthz")
        wait_children(proc, WEB_WORKERS)
        return proc

    def start_bare(self) -> Proc:
        """The bare Flask 202 app under the same gunicorn config and worker count."""
        port = free_port()
        proc = self.spawn("bare", [
            PY, "-m", "gunicorn", "--config", GUNICORN_CONF, "--bind", f"{HOST}:{port}",
            "--workers", str(WEB_WORKERS), "bench.bare_app:app",
        ], url=f"http://{HOST}:{port}")
        self.wait_http(proc, "/healthz")
        wait_children(proc, WEB_WORKERS)
        return proc

    def start_worker(self, env: dict, burst: bool = False) -> Proc:
        """`approver worker`: a SimpleWorker with its scheduler, as deployed."""
        argv = [PY, "-m", "approver", "worker"] + (["--burst"] if burst else [])
        return self.spawn("worker", argv, env=env)

    def start_noop_worker(self, redis_url: str, queue: str, burst: bool = True) -> Proc:
        """RQ's own CLI worker, same worker class and serializer, on the no-op queue."""
        argv = [PY, "-m", "rq.cli", "worker", "--url", redis_url,
                "--worker-class", "rq.worker.SimpleWorker",
                "--serializer", "rq.serializers.JSONSerializer",
                "--with-scheduler", queue] + (["--burst"] if burst else [])
        return self.spawn("noop-worker", argv)


@dataclass
class Sandbox:
    """The sandbox Dashboard process and its control API."""

    proc: Proc
    secret: str
    server: str = "gunicorn"
    pid: int = 0  # the process answering calls (gunicorn's worker), for CPU accounting

    @property
    def url(self) -> str:
        return self.proc.url

    def _call(self, method: str, path: str, body: dict | None = None, session=None):
        resp = (session or requests).request(
            method, self.url + path, data=json.dumps(body) if body is not None else None,
            headers={"authorization": self.secret, "content-type": "application/json"},
            timeout=10,
        )
        resp.raise_for_status()
        return resp.json()

    def reset(self) -> None:
        self._call("POST", "/_sandbox/reset")

    def create_requests(self, specs: list[tuple[str, str]]) -> list[str]:
        """Create key requests for (developer email, policy id) pairs; return their ids."""
        with requests.Session() as session:
            return [
                self._call("POST", "/_sandbox/key-requests", {
                    "developer": email, "policies": [policy],
                    "fields": {"company": "Bench Ltd", "use_case": "benchmark"},
                }, session)["id"]
                for email, policy in specs
            ]

    def calls(self, method: str, path: str) -> list[dict]:
        return self._call("GET", f"/_sandbox/calls?method={method}&path={path}")["calls"]


def wait_children(proc: Proc, count: int, timeout: float = 15.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = proc.children()
        if len(kids) >= count:
            return kids
        time.sleep(0.05)
    raise StartError(f"{proc.name}: {count} workers not up in {timeout:.0f}s")


def wait_for(predicate, timeout: float, interval: float = 0.02, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"{what} not met within {timeout:.0f}s")


def tail(path: Path, chars: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt
