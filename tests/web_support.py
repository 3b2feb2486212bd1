"""`approver web` as shipped (gunicorn, deploy/gunicorn.conf.py) in a process of its own."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from approver.process.embedded_redis import free_port
from tests.conftest import ROOT, SANDBOX_SECRET, WEBHOOK_TOKEN, wait_for

SECRET_KEY = "web-tier-test-signing-key-0123456789abcdef"


class Web:
    """One `approver web --config deploy/gunicorn.conf.py` process, its output in a file."""

    def __init__(self, settings, tmp_path: Path, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / f"web-{self.port}.log"
        self.env = {
            **os.environ,
            "APPROVER_DASHBOARD_URL": settings.dashboard_url or "",
            "APPROVER_DASHBOARD_SECRET": SANDBOX_SECRET,
            "APPROVER_REDIS_URL": settings.redis_url,
            "APPROVER_WEBHOOK_TOKENS": WEBHOOK_TOKEN,
            "APPROVER_SECRET_KEY": SECRET_KEY,
            "APPROVER_RULES": str(ROOT / "rules"),
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.proc: subprocess.Popen | None = None

    def start(self, *args: str) -> Web:
        log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "approver", "web", "--bind", f"127.0.0.1:{self.port}",
             "--config", str(ROOT / "deploy" / "gunicorn.conf.py"), *args],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        wait_for(self._up, timeout=30)
        return self

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"approver web exited:\n{self.output()[-3000:]}")
        try:
            return requests.get(f"{self.url}/healthz", timeout=1).ok
        except requests.RequestException:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(25)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def raw(self, request: bytes, timeout: float = 5.0) -> bytes:
        """Send `request` as it is on a fresh connection; the whole answer."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as conn:
            conn.sendall(request)
            chunks = []
            while chunk := conn.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)

    def timed_healthz(self) -> float:
        """Seconds /healthz takes to answer 200 on a fresh connection."""
        started = time.monotonic()
        response = requests.get(f"{self.url}/healthz", timeout=10,
                                headers={"Connection": "close"})
        assert response.status_code == 200
        return time.monotonic() - started
