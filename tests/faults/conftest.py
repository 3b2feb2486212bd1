"""The fault-injection stack: real processes on 127.0.0.1 and helpers to hurt them.

One `stack` per test: an EmbeddedRedis with AOF in its own directory, the sandbox Dashboard
(`approver sandbox`), the web tier (`approver web`, gunicorn, 2 processes; or several web
tiers, each its own gunicorn master on its own port) and two or more `approver worker`
processes (a test asks for another shape with `@pytest.mark.parametrize("stack",
[{"webs": 2, "workers": 3}], indirect=True)`). Each process runs in its own session
(process group), so a worker and the RQ scheduler process it forks die together, and
teardown can always end every process this module started (SIGTERM, then SIGKILL) even
when a test failed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import redis
import requests

from approver import state as st
from approver.process.embedded_redis import EmbeddedRedis, free_port

ROOT = Path(__file__).resolve().parents[2]
SECRET = "faults-sandbox-secret-0123456789"
TOKEN = "faults-webhook-token-abcdefghijkl"

ALICE, BOB, CAROL = "alice@acme.partner.example", "bob@mailinator.com", "carol@gmail.com"
FREE = "64b0000000000000000000b1"
FIELDS = {"company": "X", "use_case": "y"}
EXPECTED = {ALICE: "approve", BOB: "deny", CAROL: "review"}
APPROVE = "/api/portal/requests/approve/"
REQUESTS = "/api/portal/requests/"
EVENT = "key_request_event.submitted"

WAIT_LIMIT = 120.0  # no wait in this suite is longer (recovery after SIGKILL is the longest)


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.1, what: str = "condition"):
    """Poll `predicate` until it returns something true; AssertionError after `timeout`."""
    deadline = time.monotonic() + min(timeout, WAIT_LIMIT)
    last_error = None
    for _ in range(int(min(timeout, WAIT_LIMIT) / interval) + 2):
        try:
            value = predicate()
        except (redis.RedisError, requests.RequestException) as exc:
            value, last_error = None, exc
        if value:
            return value
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise AssertionError(f"{what}: not true within {timeout}s (last error: {last_error!r})")


class Proc:
    """One child process in its own process group, output to a log file."""

    def __init__(self, name: str, args: list[str], env: dict, log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            args, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, cwd=ROOT,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)  # the group this process leads: ours only

    def kill(self) -> None:
        """SIGKILL the process and everything it forked (its process group)."""
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM the group; SIGKILL it after `grace` seconds."""
        if self.alive():
            self._signal_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(grace)
        # Also reap what the leader left behind (e.g. an RQ scheduler child).
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)
        self._log.close()

    def output(self) -> str:
        if not self._log.closed:  # closed once the process was stopped
            self._log.flush()
        return self.log_path.read_text(errors="replace")


class Stack:
    """The running service and its sandbox Dashboard, with the helpers the scenarios use."""

    def __init__(self, tmp_path: Path, workers: int = 2, webs: int = 1):
        self.tmp = tmp_path
        self.procs: list[Proc] = []
        self.workers: list[Proc] = []
        self.redis_server = EmbeddedRedis(directory=tmp_path / "redis", appendonly=True)
        (tmp_path / "redis").mkdir()
        self.dash_port = free_port()
        taken = {self.dash_port, self.redis_server.port}
        self.web_ports: list[int] = []
        for _ in range(webs):
            self.web_ports.append(next(p for p in iter(free_port, None) if p not in taken))
            taken.add(self.web_ports[-1])
        self.dashboard = f"http://127.0.0.1:{self.dash_port}"
        self.webs = [f"http://127.0.0.1:{port}" for port in self.web_ports]
        self.hook_urls = [f"{web}/hooks/tyk/{TOKEN}" for web in self.webs]
        # The first (or only) web tier, the one the sandbox posts its webhooks to.
        self.web_port, self.web, self.hook_url = self.web_ports[0], self.webs[0], self.hook_urls[0]
        self.env = {
            **os.environ,
            "APPROVER_DASHBOARD_URL": self.dashboard,
            "APPROVER_DASHBOARD_SECRET": SECRET,
            "APPROVER_REDIS_URL": self.redis_server.url,
            "APPROVER_WEBHOOK_TOKENS": TOKEN,
            "APPROVER_SECRET_KEY": "faults-signing-key-0123456789abcdef",
            "APPROVER_RULES": str(ROOT / "rules"),
            "APPROVER_RETRY_DELAYS": "1,1,2,2,5",
            "APPROVER_RECONCILE_INTERVAL": "2",
            "APPROVER_DASHBOARD_TIMEOUT": "1",
            "PYTHONUNBUFFERED": "1",
        }
        self.http = requests.Session()
        self.http.headers["authorization"] = SECRET
        self._redis: redis.Redis | None = None
        self._worker_seq = 0
        self.n_workers = workers

    # -- processes ---------------------------------------------------------------------------
    def _spawn(self, name: str, *args: str) -> Proc:
        proc = Proc(name, [sys.executable, "-m", "approver", *args], self.env, self.tmp)
        self.procs.append(proc)
        return proc

    def start(self) -> Stack:
        self.redis_server.start()
        self._spawn("sandbox", "sandbox", "--bind", f"127.0.0.1:{self.dash_port}",
                    "--secret", SECRET, "--webhook-url", self.hook_url)
        for n, port in enumerate(self.web_ports, 1):
            self._spawn("web" if n == 1 else f"web-{n}", "web",
                        "--bind", f"127.0.0.1:{port}", "--workers", "2")
        for _ in range(self.n_workers):
            self.start_worker()
        wait_until(lambda: self.http.get(f"{self.dashboard}/_sandbox/faults", timeout=1).ok,
                   20, what="sandbox up")
        for web in self.webs:
            wait_until(lambda web=web: requests.get(f"{web}/readyz", timeout=1).ok, 20,
                       what=f"web {web} up")
        self.wait_workers(self.n_workers)
        return self

    def start_worker(self) -> Proc:
        self._worker_seq += 1
        proc = self._spawn(f"worker-{self._worker_seq}", "worker",
                           "--name", f"faults-{os.getpid()}-{self._worker_seq}")
        self.workers.append(proc)
        return proc

    def live_workers(self) -> list[Proc]:
        return [w for w in self.workers if w.alive()]

    def wait_workers(self, count: int, timeout: float = 20.0, newer_than: int = 0) -> None:
        """Wait until `count` of our worker processes (those started after the first
        `newer_than`) are registered and listening."""
        from rq import Worker

        def listening():
            names = {w.name for w in Worker.all(connection=self.redis)}
            mine = {f"faults-{os.getpid()}-{i}"
                    for i in range(newer_than + 1, self._worker_seq + 1)}
            return len(names & mine) >= count

        wait_until(listening, timeout, what=f"{count} workers listening")

    def kill_workers(self) -> list[int]:
        """SIGKILL every live worker (with its scheduler process); their pids."""
        pids = []
        for worker in self.live_workers():
            pids.append(worker.pid)
            worker.kill()
        return pids

    def stop_redis(self) -> None:
        self.redis_server.stop()

    def start_redis(self) -> None:
        self.redis_server.start()

    def teardown(self) -> None:
        for proc in reversed(self.procs):
            with contextlib.suppress(Exception):
                proc.stop()
        with contextlib.suppress(Exception):
            if self._redis is not None:
                self._redis.close()
        with contextlib.suppress(Exception):
            self.redis_server.close()
        self.http.close()

    def logs(self) -> str:
        return "\n".join(f"===== {p.name} =====\n{p.output()[-4000:]}" for p in self.procs)

    # -- Redis -------------------------------------------------------------------------------
    @property
    def redis(self) -> redis.Redis:
        if self._redis is None:
            self._redis = redis.Redis.from_url(
                self.redis_server.url, socket_timeout=2, socket_connect_timeout=1
            )
        return self._redis

    @property
    def store(self) -> st.Store:
        return st.Store(self.redis)

    def states(self, ids) -> dict[str, dict | None]:
        return {i: self.store.state(i) for i in ids}

    def wait_final(self, ids, timeout: float = 45.0) -> float:
        """Wait until every request has a final state in Redis; the seconds it took."""
        started = time.monotonic()

        def done():
            return all(s in st.SETTLED_STATES for s in self.store.states(list(ids)))

        try:
            wait_until(done, timeout, interval=0.2, what="every request final")
        except AssertionError:
            left = {i: s for i, s in zip(ids, self.store.states(list(ids)), strict=True)
                    if s not in st.SETTLED_STATES}
            raise AssertionError(f"not final after {timeout}s: {left}") from None
        return time.monotonic() - started

    def locks(self) -> list[bytes]:
        return list(self.redis.scan_iter(match=b"approver:lock:*", count=1000))

    # -- the sandbox's control API -------------------------------------------------------------
    def control(self, method: str, path: str, **kwargs) -> dict:
        resp = self.http.request(method, f"{self.dashboard}/_sandbox/{path}", timeout=5, **kwargs)
        assert resp.ok, (resp.status_code, resp.text)
        return resp.json()

    def set_webhook(self, url: str | None) -> None:
        self.control("PUT", "webhook", json={"url": url})

    def fault(self, method: str, path: str, *, status: int | None = None,
              hang: float | None = None, times: int | None = 1) -> None:
        body = {"method": method, "path": path, "times": times}
        if status is not None:
            body["status"] = status
        if hang is not None:
            body["hang"] = hang
        self.control("POST", "faults", json=body)

    def calls(self, method: str | None = None, path: str | None = None) -> list[dict]:
        params = {k: v for k, v in (("method", method), ("path", path)) if v}
        return self.control("GET", "calls", params=params)["calls"]

    def create(self, developers: list[str]) -> list[dict]:
        """Key requests created in the sandbox portal, one per developer email, in order."""
        return [
            self.control("POST", "key-requests",
                         json={"developer": d, "policies": [FREE], "fields": FIELDS})
            for d in developers
        ]

    def dashboard_request(self, request_id: str) -> dict | None:
        resp = self.http.get(f"{self.dashboard}{REQUESTS}{request_id}", timeout=5)
        if resp.status_code == 404:
            return None
        assert resp.ok, (resp.status_code, resp.text)
        return resp.json()

    # -- webhooks ------------------------------------------------------------------------------
    def post_webhook(self, request: dict, session: requests.Session | None = None,
                     retry_for: float = 30.0,
                     url: str | None = None) -> list[tuple[int | str, float]]:
        """Deliver Tyk's webhook (to `url`, else the first web tier), retrying 503s
        (bounded); every (status, seconds) seen."""
        body = {"event": EVENT, "data": {k: v for k, v in request.items() if k != "catalogues"}}
        sender = session or requests
        seen: list[tuple[int | str, float]] = []
        deadline = time.monotonic() + retry_for
        for _ in range(200):
            started = time.monotonic()
            try:
                resp = sender.post(url or self.hook_url, json=body, timeout=(2, 3))
                status: int | str = resp.status_code
            except requests.RequestException as exc:
                status = type(exc).__name__
            seen.append((status, time.monotonic() - started))
            if status != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        return seen


def developers(approve: int, deny: int, review: int) -> list[str]:
    """A mixed list of developer emails, interleaved."""
    out = []
    for i in range(max(approve, deny, review)):
        out += [e for e, n in ((ALICE, approve), (BOB, deny), (CAROL, review)) if i < n]
    return out


def assert_applied_once(stack: Stack, requests_: list[dict], developer_of: dict[str, str]):
    """Every request decided as its developer's rule says, applied exactly once, nothing locked."""
    ids = [r["id"] for r in requests_]
    states = stack.states(ids)
    wrong = {i: (s or {}).get("outcome") for i, s in states.items()
             if (s or {}).get("outcome") != EXPECTED[developer_of[i]]}
    assert not wrong, f"unexpected outcomes: {wrong}"
    assert all(s["state"] == (st.IN_REVIEW if s["outcome"] == "review" else st.APPLIED)
               for s in states.values()), states
    ok_approves = Counter(c["path"][len(APPROVE):] for c in stack.calls("PUT", APPROVE)
                          if 200 <= c["status"] < 300)
    ok_deletes = Counter(c["path"][len(REQUESTS):] for c in stack.calls("DELETE", REQUESTS)
                         if 200 <= c["status"] < 300)
    for request_id in ids:
        outcome = EXPECTED[developer_of[request_id]]
        assert ok_approves[request_id] == (outcome == "approve"), (
            request_id, outcome, ok_approves[request_id])
        assert ok_deletes[request_id] == (outcome == "deny"), (
            request_id, outcome, ok_deletes[request_id])
        in_tyk = stack.dashboard_request(request_id)
        if outcome == "deny":
            assert in_tyk is None, request_id
        else:
            assert in_tyk is not None and in_tyk["approved"] is (outcome == "approve"), request_id
    # A duplicate delivery for a request in review re-reads it from Tyk (it may have been
    # decided there) under its lock, so a job may still hold one for a moment; and one whose
    # release met the Redis outage lapses within LOCK_TTL. A lock held beyond that is a leak.
    wait_until(lambda: stack.locks() == [], st.LOCK_TTL + 2, interval=0.1,
               what="no lock held")
    return ok_approves, ok_deletes


def developer_map(requests_: list[dict], emails: list[str]) -> dict[str, str]:
    return {r["id"]: e for r, e in zip(requests_, emails, strict=True)}


def run_threads(target, items, count: int) -> list:
    """Run `target(item)` for every item on `count` threads; the results in item order."""
    results: list = [None] * len(items)
    errors: list[BaseException] = []
    index = iter(range(len(items)))
    lock = threading.Lock()

    def loop():
        while True:
            with lock:
                i = next(index, None)
            if i is None:
                return
            try:
                results[i] = target(items[i])
            except BaseException as exc:  # reported in the caller's thread
                errors.append(exc)

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_LIMIT)
    assert not any(t.is_alive() for t in threads), "a sender thread hung"
    if errors:
        raise errors[0]
    return results


@pytest.fixture
def stack(tmp_path, request):
    """The whole service on real processes; torn down (kill -9 as a last resort) after.

    Indirect parametrization passes Stack's shape: `{"webs": 2, "workers": 3}`.
    """
    s = Stack(tmp_path, **getattr(request, "param", {}))
    try:
        s.start()
        yield s
    finally:
        reports = [getattr(request.node, f"rep_{w}", None) for w in ("setup", "call")]
        if sys.exc_info()[0] is not None or any(r is not None and r.failed for r in reports):
            print(s.logs())
        s.teardown()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
