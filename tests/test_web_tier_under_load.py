"""The shipped web tier (gunicorn, deploy/gunicorn.conf.py) keeps answering its probes while
clients hold connections: hand-offs, slow senders, partial bodies.
"""

from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import ROOT
from tests.test_hostile_input import BILLING_SECRET
from tests.web_support import Web

# A liveness probe that takes longer than this is a web tier that is not answering: the
# Kubernetes probe in deploy/ gives up after 5 s. Generous on purpose (a shared CI machine).
PROMPT = 1.0


@pytest.fixture
def web(settings, tmp_path):
    server = Web(settings, tmp_path, APPROVER_BILLING_SECRETS=BILLING_SECRET).start()
    yield server
    server.stop()


def test_healthz_answers_promptly_while_twenty_handoffs_are_open(web, redis_conn):
    # No worker runs: nothing is ever decided, so a hand-off that waited for a decision
    # would hold its web worker for as long as it waits.
    ids = [f"64b0{n:020x}" for n in range(20)]
    started = threading.Barrier(21)

    def handoff(request_id: str) -> int:
        started.wait()
        return requests.get(f"{web.url}/handoff?id={request_id}", timeout=30).status_code

    with ThreadPoolExecutor(20) as pool:
        answers = [pool.submit(handoff, request_id) for request_id in ids]
        started.wait()
        probes = [web.timed_healthz() for _ in range(3)]
        statuses = [a.result() for a in answers]
    assert statuses == [202] * 20
    assert max(probes) < PROMPT, probes


def slow_clients(web, n: int, request: bytes) -> list[socket.socket]:
    """`n` connections that send the start of `request` and then nothing more."""
    conns = []
    for _ in range(n):
        conn = socket.create_connection(("127.0.0.1", web.port), timeout=5)
        conn.sendall(request)
        conns.append(conn)
    return conns


@pytest.mark.parametrize("request_start", [
    pytest.param(b"GET /healthz HTTP/1.1\r\nHost: approver\r\nX-Slow: ", id="unfinished-headers"),
    pytest.param(b"POST /billing/events HTTP/1.1\r\nHost: approver\r\n"
                 b"Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n{\"type\":",
                 id="partial-body"),
    pytest.param(b"", id="silent"),
])
def test_ten_slow_clients_do_not_starve_healthz(web, request_start):
    conns = slow_clients(web, 10, request_start)
    try:
        probes = [web.timed_healthz() for _ in range(3)]
    finally:
        for conn in conns:
            conn.close()
    assert max(probes) < PROMPT, probes


@pytest.fixture
def quick_web(settings, tmp_path):
    """The shipped configuration with a 2-second connection deadline."""
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text(f"exec(open({str(ROOT / 'deploy' / 'gunicorn.conf.py')!r}).read())\n"
                    "from approver.web import gunicorn_worker\n"
                    "gunicorn_worker.DEADLINE = 2.0\n")
    server = Web(settings, tmp_path, APPROVER_BILLING_SECRETS=BILLING_SECRET)
    server.start("--config", str(conf))
    yield server
    server.stop()


@pytest.mark.parametrize("request_start", [
    b"GET /healthz HTTP/1.1\r\nHost: approver\r\nX-Slow: a",
    b"POST /billing/events HTTP/1.1\r\nHost: approver\r\n"
    b"Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n{\"type\":",
])
def test_a_client_that_never_finishes_its_request_is_dropped(quick_web, request_start):
    (conn,) = slow_clients(quick_web, 1, request_start)
    conn.settimeout(20)
    with conn:
        for _ in range(3):  # a byte now and then does not keep the connection
            conn.sendall(b"x")
            threading.Event().wait(0.5)
        try:
            answer = conn.recv(65536)
            while chunk := conn.recv(65536):
                answer += chunk
        except ConnectionResetError:
            answer = b""
    assert answer == b"" or answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert "Traceback" not in quick_web.output()
