"""A burst of wrong logins against the shipped web tier (gunicorn, one worker process with
its threads): the worker's peak memory grows by a few password checks' worth, not one
check per request in flight."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from html import unescape

import pytest
import requests

from approver.state import accounts
from tests.console_support import add_admin
from tests.web_support import Web

BURST = 16  # the threads of one shipped web worker (approver/web/gunicorn_conf.py)
ARGON2_MIB = 19  # accounts._hasher's memory_cost
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _peak_kib(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM), in KiB."""
    with open(f"/proc/{pid}/status") as status:
        return int(next(line for line in status if line.startswith("VmHWM:")).split()[1])


def _worker_pid(master: int) -> int:
    with open(f"/proc/{master}/task/{master}/children") as children:
        pids = [int(p) for p in children.read().split()]
    assert len(pids) == 1, pids
    return pids[0]


@pytest.fixture
def web(settings, rt, tmp_path):
    add_admin(rt)
    server = Web(settings, tmp_path, APPROVER_WEB_WORKERS="1").start()
    yield server
    server.stop()


def _login_form(web, name: str) -> tuple[requests.Session, dict]:
    browser = requests.Session()
    page = browser.get(f"{web.url}/console/login", timeout=30)
    token = unescape(_CSRF.search(page.text).group(1))
    for cookie in browser.cookies:
        cookie.secure = False  # a browser sends it to 127.0.0.1 over http; requests would not
    return browser, {"csrf_token": token, "name": name, "password": "not the password!"}


def test_a_burst_of_wrong_logins_holds_a_few_password_checks_of_memory(web):
    worker = _worker_pid(web.proc.pid)
    browser, form = _login_form(web, "warm-up")  # imports and one check done before
    assert browser.post(f"{web.url}/console/login", data=form, timeout=30).status_code == 401
    before = _peak_kib(worker)
    # Distinct names, so each one is checked (the attempt limits let them all through).
    forms = [_login_form(web, f"guess{n}") for n in range(BURST)]
    start = threading.Barrier(BURST)

    def guess(n: int) -> int:
        browser, form = forms[n]
        start.wait()
        return browser.post(f"{web.url}/console/login", data=form, timeout=60).status_code

    with ThreadPoolExecutor(BURST) as pool:
        statuses = list(pool.map(guess, range(BURST)))
    assert statuses == [401] * BURST
    grown_mib = (_peak_kib(worker) - before) / 1024
    # At most HASHES_AT_ONCE checks' memory at a time, plus room for the requests themselves;
    # one check per request in flight would be BURST times ARGON2_MIB.
    assert grown_mib < accounts.HASHES_AT_ONCE * ARGON2_MIB + 24, grown_mib
