"""Container health checks for tyk-approver (copied into the image as /app/healthcheck.py).

    python /app/healthcheck.py web      GET /healthz on the web tier (the image's HEALTHCHECK)
    python /app/healthcheck.py worker   is an RQ worker of this host alive in Redis?

Exit status 0 means healthy. Only the standard library and the installed packages are used:
slim images have no curl.

web: the URL is APPROVER_HEALTHCHECK_URL, default http://127.0.0.1:8000/healthz. Liveness
only: /readyz (Redis reachable) is for routing traffic, and restarting a web process does
not bring Redis back.

worker: an RQ worker registers itself in Redis (with its hostname, which is the pod name in
Kubernetes and the container id in docker) and refreshes that registration with a heartbeat;
a worker that stopped heart-beating drops out once its TTL lapses (the service's worker TTL,
60 s, plus RQ's 60 s; while a job runs, the job's timeout plus 60 s). Healthy when a worker of this host is registered. When Redis itself cannot be
reached the check passes: the worker waits for Redis and carries on by itself, and
restarting every worker during a Redis outage would help nothing.
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.error
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8000/healthz"


def check_web(url: str | None = None, timeout: float = 4.0) -> int:
    """0 when the web tier answers 200 on its liveness URL."""
    url = url or os.environ.get("APPROVER_HEALTHCHECK_URL") or DEFAULT_URL
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            ok = response.status == 200
    except OSError as exc:  # URLError, HTTPError, timeouts, refused connections
        if isinstance(exc, urllib.error.HTTPError):
            exc.close()
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    return 0 if ok else 1


def check_worker(hostname: str | None = None, timeout: float = 3.0) -> int:
    """0 when a live RQ worker of this host is registered, or Redis cannot be reached."""
    from redis.exceptions import RedisError
    from rq import Worker

    from approver import config
    from approver.state import connection

    hostname = hostname or socket.gethostname()
    connection = connection.connect(config.from_env(), timeout=timeout)
    try:
        workers = Worker.all(connection=connection)
    except RedisError as exc:
        print(f"redis unreachable ({type(exc).__name__}): not the worker's fault", file=sys.stderr)
        return 0
    finally:
        connection.close()
    if any(w.hostname == hostname for w in workers):
        return 0
    print(f"unhealthy: no live RQ worker registered for host {hostname}", file=sys.stderr)
    return 1


def main(argv: list[str]) -> int:
    role = argv[1] if len(argv) > 1 else "web"
    if role == "web":
        return check_web(argv[2] if len(argv) > 2 else None)
    if role == "worker":
        return check_worker()
    print(f"usage: {argv[0]} [web [URL] | worker]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
