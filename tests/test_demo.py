"""The README's first command: `approver demo` decides the samples, then serves until Ctrl-C."""

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import requests

from tests.conftest import ROOT


def test_demo_once_approves_denies_and_leaves_for_review():
    result = subprocess.run(
        [sys.executable, "-m", "approver", "demo", "--once", "--port", "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert any(line.startswith("alice@acme.partner.example") and "APPROVE" in line
               and "(applied in Tyk)" in line for line in lines)
    assert any(line.startswith("bob@mailinator.com") and "DENY" in line for line in lines)
    assert any(line.startswith("carol@gmail.com") and "REVIEW" in line for line in lines)
    # Bob's domain is on the maintained list, which the demo names.
    assert any("from developer.email_disposable: disposable-email-domains " in line
               and line.endswith(": mailinator.com") for line in lines)
    # The signal facts ask the sandbox's own DNS and RDAP servers: no network.
    assert any(line.startswith("sandbox DNS 127.0.0.1:") and " RDAP http://127.0.0.1:" in line
               for line in lines)


def test_demo_serves_until_ctrl_c_its_hint_works_and_nothing_is_left_behind(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "approver", "demo", "--port", "0"], cwd=ROOT,
        env={**os.environ, "TMPDIR": str(tmp_path)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout],
                              daemon=True)
    reader.start()
    seen: list[str] = []

    def until(predicate, timeout=90.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                seen.append(lines.get(timeout=0.5))
            except queue.Empty:
                continue
            if predicate(seen[-1]):
                return seen[-1]
        raise AssertionError("not printed in time:\n" + "".join(seen))

    try:
        hint = until(lambda line: "curl -X POST" in line and "key-requests" in line)
        url = re.search(r"curl -X POST (\S+)", hint)[1]
        secret = re.search(r"-H 'authorization: ([^']+)'", hint)[1]
        body = re.search(r"-d '([^']+)'", hint)[1]
        made = requests.post(url, data=body, headers={"authorization": secret}, timeout=10)
        assert made.ok, made.text
        new_id = made.json()["id"]
        decided = until(lambda line: line.startswith(new_id))
        assert "NOT DECIDED" not in decided and " by " in decided
        time.sleep(1.5)  # another turn of the loop: nothing is printed twice
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        reader.join(10)
    while not lines.empty():
        seen.append(lines.get())
    assert proc.returncode == 0, err[-2000:]
    assert sum(line.startswith(new_id) for line in seen) == 1
    assert sum(" APPROVE " in line for line in seen) == 1, "".join(seen)  # alice's, once
    assert list(tmp_path.iterdir()) == []  # the demo's temporary folder is gone


def test_sigterm_stops_everything_the_demo_started_and_it_tells_the_cli_where_it_is(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "approver", "demo", "--port", "0"], cwd=ROOT,
        env={**os.environ, "TMPDIR": str(tmp_path)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if "curl -X POST" in line and "key-requests" in line:
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    text = "".join(seen) + out
    assert proc.returncode == 0, err[-2000:]
    exports = re.search(r"^  (export APPROVER_REDIS_URL=\S+ .*)$", text, re.M)[1]
    assert "APPROVER_DASHBOARD_URL=http://127.0.0.1:" in exports
    assert "APPROVER_DASHBOARD_SECRET=" in exports and "APPROVER_RULES=" in exports
    port = int(re.search(r"web tier http://127\.0\.0\.1:(\d+)", text)[1])
    redis_port = int(re.search(r"APPROVER_REDIS_URL=redis://127\.0\.0\.1:(\d+)", exports)[1])
    for taken in (port, redis_port):  # nothing was left holding its port
        with socket.socket() as probe:  # (a closed connection's TIME_WAIT is no listener)
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", taken))
    assert list(tmp_path.iterdir()) == []
