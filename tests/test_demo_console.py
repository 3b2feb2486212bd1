"""`make run` (approver demo) prints the console and a login; approving carol there approves
her in the sandbox Dashboard and records who did."""

import re
import signal
import subprocess
import sys
import threading
import time

import requests

from tests import browser
from tests.conftest import ROOT


def read_until(proc, lines: list[str], marker: str, timeout: float = 120) -> threading.Thread:
    """Collect the demo's output lines (all along, in a thread, which it returns), waiting
    until one contains `marker` (bounded)."""
    done = threading.Event()

    def pump():
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if marker in line:
                done.set()
        done.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    assert done.wait(timeout), "\n".join(lines)
    assert any(marker in line for line in lines), "\n".join(lines)
    return reader


def test_the_demo_leaves_carol_in_the_console_and_approving_her_there_applies_it():
    browser.require()
    proc = subprocess.Popen([sys.executable, "-m", "approver", "demo", "--port", "0"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    chrome = reader = None
    try:
        lines: list[str] = []
        reader = read_until(proc, lines, "/_sandbox/key-requests")
        out = "\n".join(lines)
        console, password = re.search(
            r"review console: (http://\S+/console/) \(sign in as admin, password (\S+)\)",
            out).groups()
        carol = re.search(r"key request (\S+) from carol@gmail.com", out).group(1)
        assert re.search(r"carol@gmail.com +REVIEW .*review console's inbox", out)
        dashboard, secret = re.search(r"curl -X POST (http://\S+)/_sandbox/key-requests "
                                      r"-H 'authorization: (\S+)'", out).groups()
        chrome = browser.Browser()
        base = console.removesuffix("/console/")
        chrome.sign_in(base, "admin", password)
        assert carol in chrome.text
        chrome.driver.find_element("link text", carol).click()
        chrome.fill("textarea[name=reason]", "Carol Consulting is a customer.")
        chrome.button("Approve").click()
        chrome.wait_for_text("approve by local:admin", timeout=60)
        answer = requests.get(f"{dashboard}/api/portal/requests/{carol}",
                              headers={"authorization": secret}, timeout=5)
        assert answer.json()["approved"] is True
        deadline = time.monotonic() + 10
        while not any("by local:admin" in line for line in lines) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert any(carol in line and "APPROVE by local:admin" in line for line in lines), lines
    finally:
        if chrome:
            chrome.quit()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if reader:
            reader.join(10)
        proc.stdout.close()
