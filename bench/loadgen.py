"""Python load generators: closed loop (the fallback when wrk is missing) and open loop.

Both open a new connection per request (`http.client`, `Connection: close`), as gunicorn's
sync workers close every connection after the answer anyway.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlsplit

HEADERS = {"Content-Type": "application/json", "User-Agent": "Tyk-Hookshot",
           "Connection": "close"}


def post(url: str, body: bytes, timeout: float = 10.0) -> int:
    """One POST on a fresh connection; its status (0 on a connection error)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request("POST", parts.path, body=body, headers=HEADERS)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except OSError:
        return 0
    finally:
        conn.close()


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of values; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass
class ClosedLoopResult:
    requests: int
    seconds: float
    errors: int
    latencies_ms: list[float] = field(repr=False)

    def to_dict(self) -> dict:
        return {
            "rps": self.requests / self.seconds,
            "p50_ms": percentile(self.latencies_ms, 50),
            "p99_ms": percentile(self.latencies_ms, 99),
            "requests": self.requests,
            "errors": self.errors,
        }


def closed_loop(url: str, body_for: Callable[[int], bytes], connections: int,
                seconds: float) -> ClosedLoopResult:
    """`connections` threads, each POSTing back to back for `seconds`."""
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    counter = iter(range(10**12))
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def loop(slot: int) -> None:
        while True:
            with lock:
                n = next(counter)
            body = body_for(n)
            started = time.perf_counter()
            if started >= stop_at:
                return
            status = post(url, body)
            latencies[slot].append((time.perf_counter() - started) * 1000)
            if not 200 <= status < 300:
                errors[slot] += 1

    began = time.perf_counter()
    threads = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    flat = [v for chunk in latencies for v in chunk]
    return ClosedLoopResult(len(flat), elapsed, sum(errors), flat)


@dataclass
class Sent:
    """One open-loop request: when it was due, when it went, its answer."""

    key: str
    due: float  # wall clock (time.time()) when the schedule wanted it sent
    sent: float = 0.0  # wall clock just before connecting
    answered_ms: float = 0.0
    status: int = 0


def open_loop(url: str, bodies: list[tuple[str, bytes]], rate: float,
              senders: int = 16) -> list[Sent]:
    """Send each body at a fixed rate (requests due at t0 + i/rate), whatever the answers."""
    results = [Sent(key, 0.0) for key, _ in bodies]

    def send(i: int, body: bytes) -> None:
        rec = results[i]
        rec.sent = time.time()
        started = time.perf_counter()
        rec.status = post(url, body)
        rec.answered_ms = (time.perf_counter() - started) * 1000

    with ThreadPoolExecutor(senders, thread_name_prefix="open-loop") as pool:
        t0_wall = time.time() + 0.05
        t0 = time.perf_counter() + 0.05
        for i, (_, body) in enumerate(bodies):
            due = t0 + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            results[i].due = t0_wall + i / rate
            pool.submit(send, i, body)
    return results
