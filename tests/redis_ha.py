"""Redis as production runs it, on free loopback ports: a master with a replica watched
by three Sentinels (real `redis-server` and `redis-sentinel` processes), or one server
with TLS on. Used by the failover and TLS tests."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from pathlib import Path

import redis

from approver.process.embedded_redis import EmbeddedRedis, free_port, redis_executable

MASTER = "approver-master"
PASSWORD = "redis-data-password-0123456789"
SENTINEL_PASSWORD = "redis-sentinel-password-0123456789"


def sentinel_command(conf: Path) -> list[str]:
    """How to start a Sentinel on its config file: Debian's redis-sentinel, else
    `redis-server CONF --sentinel` (the file first: after an option, Redis reads it as that
    option's argument and refuses to start)."""
    found = shutil.which("redis-sentinel")
    return [found, str(conf)] if found else [redis_executable(), str(conf), "--sentinel"]


def free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


class Sentinels:
    """A master, one replica and three Sentinels (quorum 2), passwords on all of them."""

    def __init__(self, directory: Path):
        self.directory = directory
        auth = ("--requirepass", PASSWORD, "--masterauth", PASSWORD)
        master_port, replica_port, *self.sentinel_ports = free_ports(5)
        (directory / "master").mkdir()
        (directory / "replica").mkdir()
        self.master = EmbeddedRedis(master_port, directory / "master", args=auth)
        self.replica = EmbeddedRedis(replica_port, directory / "replica", args=(
            *auth, "--replicaof", "127.0.0.1", str(master_port)))
        self.nodes = [self.master, self.replica]
        self.sentinels: list[subprocess.Popen] = []
        self.password_file = directory / "redis-password"
        self.password_file.write_text(PASSWORD + "\n")

    @property
    def addresses(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    @property
    def env(self) -> dict[str, str]:
        """The service's settings for this Redis: the URL's host is not used."""
        return {
            "APPROVER_REDIS_URL": "redis://sentinel-managed/0",
            "APPROVER_REDIS_PASSWORD_FILE": str(self.password_file),
            "APPROVER_REDIS_SENTINELS": self.addresses,
            "APPROVER_REDIS_SENTINEL_MASTER": MASTER,
            "APPROVER_REDIS_SENTINEL_PASSWORD": SENTINEL_PASSWORD,
        }

    def start(self) -> Sentinels:
        for node in self.nodes:
            node.start()
        for n, port in enumerate(self.sentinel_ports):
            conf = self.directory / f"sentinel-{n}.conf"
            # Sentinel rewrites its file as it learns the set-up: one each, writable.
            conf.write_text("\n".join([
                f"port {port}", "bind 127.0.0.1", f"dir {self.directory}",
                f"requirepass {SENTINEL_PASSWORD}", f"sentinel sentinel-pass {SENTINEL_PASSWORD}",
                f"sentinel monitor {MASTER} 127.0.0.1 {self.master.port} 2",
                f"sentinel auth-pass {MASTER} {PASSWORD}",
                f"sentinel down-after-milliseconds {MASTER} 1000",
                f"sentinel failover-timeout {MASTER} 4000",
                "loglevel warning", ""]))
            with open(self.directory / f"sentinel-{n}.log", "wb") as out:
                self.sentinels.append(subprocess.Popen(
                    sentinel_command(conf), stdout=out, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL))
        self.wait_ready()
        return self

    def sentinel(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, password=SENTINEL_PASSWORD, socket_timeout=1,
                           socket_connect_timeout=1)

    def master_port(self) -> int | None:
        """The master's port as the Sentinels agree on it now (None if they do not)."""
        seen = set()
        for port in self.sentinel_ports:
            try:
                with self.sentinel(port) as s:
                    seen.add(int(s.sentinel_get_master_addr_by_name(MASTER)[1]))
            except (redis.RedisError, TypeError):
                return None
        return seen.pop() if len(seen) == 1 else None

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until the replica is in sync and every Sentinel knows the others and the replica."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for n, proc in enumerate(self.sentinels):
                if proc.poll() is not None:
                    said = (self.directory / f"sentinel-{n}.log").read_text(errors="replace")
                    raise AssertionError(f"Sentinel {n} exited at start: {said[-500:]}")
            with contextlib.suppress(redis.RedisError):
                states = []
                for port in self.sentinel_ports:
                    with self.sentinel(port) as s:
                        m = s.sentinel_master(MASTER)
                        states.append(m["num-other-sentinels"] == 2 and m["num-slaves"] >= 1)
                if all(states) and self.in_sync():
                    return
            time.sleep(0.2)
        raise AssertionError(f"Sentinels not ready within {timeout}s")

    def in_sync(self) -> bool:
        with redis.Redis(port=self.master_port() or 0, password=PASSWORD,
                         socket_timeout=1) as m:
            info = m.info("replication")
        return info.get("connected_slaves", 0) >= 1 and info.get("slave0", {}).get(
            "state") == "online"

    def failover(self) -> int:
        """Ask a Sentinel to promote the replica now; the old master's port."""
        old = self.master_port()
        with self.sentinel(self.sentinel_ports[0]) as s:
            s.execute_command("SENTINEL", "FAILOVER", MASTER)
        return old

    def close(self) -> None:
        for proc in self.sentinels:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for node in self.nodes:
            node.close()
