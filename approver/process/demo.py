"""`approver demo`: the whole service on one machine against the sandbox Dashboard."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from approver.errors import ApproverError
from approver.process import demo_report as report
from approver.process.embedded_redis import EmbeddedRedis, free_port
from approver.sandbox import create_app, serve
from approver.sandbox.portal import create_portal_app
from approver.sandbox.signals import SignalServers
from approver.sandbox.state import SandboxError
from approver.state import Store, accounts, connection

# (developer email, policy names, fields): one request the shipped rules approve, one they
# deny and one they leave for a human.
SAMPLES = (
    ("alice@acme.partner.example", ["Free"], {"company": "Acme Inc", "use_case": "billing sync"}),
    ("bob@mailinator.com", ["Free"], {"company": "", "use_case": "testing"}),
    ("carol@gmail.com", ["Free"], {"company": "Carol Consulting", "use_case": "dashboards"}),
)


def _wait_http(url: str, procs, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            raise ApproverError("a service process exited at start; see the service log")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise ApproverError(f"{url} did not come up within {timeout:.0f}s")


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _policy_ids(sandbox, names: list[str]) -> list[str]:
    by_name = {p["name"]: p["id"] for p in sandbox.policies()}
    return [by_name[n] for n in names]


# The same three developers in the new portal, asking for the Free product on the Free plan
# (the portal's access requests carry no form answers).
PORTAL_SAMPLES = tuple((email, ["Free"], "Free plan") for email, _, _ in SAMPLES)


def main(once: bool = False, port: int = 8000, portal: str = "classic",
         seed: str | None = None) -> int:
    """Start everything, decide the sample requests, print each decision, serve until Ctrl-C
    (or SIGTERM, or SIGHUP: everything started is stopped either way).

    `portal`: "classic" (the sandbox Dashboard), "new" (the sandbox Developer Portal) or
    "both", decided by the same rules in one service. `seed`: the sandbox Dashboard's data
    (developers with their sign-up fields, policies, the catalogue), as `approver sandbox
    --seed` takes it.
    """
    classic, new = portal in ("classic", "both"), portal in ("new", "both")
    rules = Path(os.environ.get("APPROVER_RULES", "rules"))
    if not rules.exists():
        raise ApproverError(f"no rules at {rules}: run the demo from the project folder "
                            "or set APPROVER_RULES")
    if not port or not _port_free(port):
        if port:
            print(f"port {port} is taken (another demo still running, or another service): "
                  "using a free one", file=sys.stderr)
        port = free_port()  # 8000 taken (or 0 asked for): any free port will do
    # A terminal closed (SIGHUP) or a `kill` (SIGTERM) ends the demo as Ctrl-C does, so
    # Redis, the web tier and the worker are stopped, not left holding the port.
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _interrupt)
    # Everything started is stopped, and the temporary folder removed, however the demo
    # ends (--once, Ctrl-C, an error).
    with contextlib.ExitStack() as cleanup:
        workdir = Path(tempfile.mkdtemp(prefix="approver-demo-"))
        cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)
        try:
            return _serve(cleanup, workdir, rules, once, port, portal, classic, new, seed)
        except KeyboardInterrupt:
            return 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _serve(cleanup: contextlib.ExitStack, workdir: Path, rules: Path, once: bool, port: int,
           portal: str, classic: bool, new: bool, seed: str | None) -> int:
    token = secrets.token_urlsafe(24)
    dashboard_secret = secrets.token_hex(16)
    redis_server = EmbeddedRedis(directory=workdir / "redis")
    (workdir / "redis").mkdir()
    redis_server.start()
    cleanup.callback(redis_server.stop)
    sandbox_server = serve(create_app(
        secret=dashboard_secret, seed=seed,
        webhook_url=f"http://127.0.0.1:{port}/hooks/tyk/{token}"
    )) if classic else None
    sandbox = sandbox_server.app.sandbox if sandbox_server else None
    portal_token, portal_hook_token = secrets.token_hex(16), secrets.token_urlsafe(24)
    portal_server = serve(create_portal_app(
        secret=portal_token, webhook_url=f"http://127.0.0.1:{port}/hooks/portal",
        webhook_headers={"X-Approver-Token": portal_hook_token},
    )) if new else None
    # DNS and RDAP for the signal facts: the sandbox's, so the demo needs no network.
    signal_servers = SignalServers()
    for server in (sandbox_server, portal_server, signal_servers):
        if server:
            cleanup.callback(server.shutdown)
    env = {
        **os.environ,
        "APPROVER_REDIS_URL": redis_server.url,
        "APPROVER_WEBHOOK_TOKENS": token,
        "APPROVER_SECRET_KEY": secrets.token_urlsafe(32),
        "APPROVER_RULES": str(rules.resolve()),
        "APPROVER_RECONCILE_INTERVAL": "15",
        "APPROVER_RETRY_DELAYS": "1,2,5",
        "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics"),
        **signal_servers.env,
    }
    (workdir / "metrics").mkdir()
    for name in ("APPROVER_DASHBOARD_URL", "APPROVER_DASHBOARD_SECRET", "APPROVER_PORTAL_URL",
                 "APPROVER_PORTAL_TOKEN", "APPROVER_PORTAL_WEBHOOK_TOKENS"):
        env.pop(name, None)
    if sandbox_server:
        env.update(APPROVER_DASHBOARD_URL=sandbox_server.url,
                   APPROVER_DASHBOARD_SECRET=dashboard_secret)
    if portal_server:
        env.update(APPROVER_PORTAL_URL=portal_server.url, APPROVER_PORTAL_TOKEN=portal_token,
                   APPROVER_PORTAL_WEBHOOK_TOKENS=portal_hook_token)
    log_path = workdir / "service.log"
    log_file = cleanup.enter_context(log_path.open("w"))
    procs: list[subprocess.Popen] = []
    cleanup.callback(_stop, procs)
    procs += [
        subprocess.Popen([sys.executable, "-m", "approver", "web", "--bind",
                          f"127.0.0.1:{port}", "--workers", "2"],
                         env=env, stdout=log_file, stderr=log_file),
        subprocess.Popen([sys.executable, "-m", "approver", "worker"],
                         env=env, stdout=log_file, stderr=log_file),
    ]
    try:
        _wait_http(f"http://127.0.0.1:{port}/healthz", procs)
        where = [f"web tier http://127.0.0.1:{port}"]
        if sandbox_server:
            where.append(f"sandbox Dashboard {sandbox_server.url}")
        if portal_server:
            where.append(f"sandbox Developer Portal {portal_server.url}/portal-api")
        print(f"tyk-approver demo: {', '.join(where)}, Redis {redis_server.url}")
        print(f"sandbox DNS {signal_servers.env['APPROVER_DNS_SERVERS']} and RDAP "
              f"{signal_servers.env['APPROVER_RDAP_URL']} for the signal facts")
        st = Store(connection.connect(redis_server.url))
        if not once:  # with --once, the console is gone before anyone could sign in
            password = secrets.token_urlsafe(12)
            accounts.add(st, "admin", password)
            print(f"review console: http://127.0.0.1:{port}/console/ "
                  f"(sign in as admin, password {password})")
            print("the command line, in another shell (approver rules explain, review list, "
                  "decisions list …):")
            print("  " + report.cli_exports(env))
        print(f"service logs: {log_path} (removed when the demo stops)\n")
        pending = {}
        if sandbox:
            for email, policies, fields in SAMPLES:
                try:
                    kr = sandbox.create_key_request(email, _policy_ids(sandbox, policies),
                                                    fields)
                except (KeyError, SandboxError):  # a seed of your own without this sample
                    print(f"sample {email} skipped: the seed lacks them or {policies[0]}")
                    continue
                pending[kr["id"]] = report.label(email, "classic", portal)
                print(f"key request {kr['id']} from {email} for {', '.join(policies)}"
                      + (" (classic portal)" if portal == "both" else ""))
        if portal_server:
            for email, products, plan in PORTAL_SAMPLES:
                ar = portal_server.app.sandbox.create_access_request(email, products, plan)
                pending[f"portal-{ar['ID']}"] = report.label(email, "portal", portal)
                print(f"access request portal-{ar['ID']} from {email} for "
                      f"{', '.join(products)} on {plan} (new portal)")
        print()
        report.report(st, pending)
        if once:
            return 0
        print("\nServing; Ctrl-C to stop. Make another request with:")
        if sandbox_server:
            free = _policy_ids(sandbox, ["Free"])[0]
            print(f"  curl -X POST {sandbox_server.url}/api/portal/developers "
                  f"-H 'authorization: {dashboard_secret}' -d '{{\"email\": "
                  f"\"gina@example.org\", \"fields\": {{\"Name\": \"Gina Gold\", "
                  f"\"company size\": \"4\"}}}}'   (a developer with sign-up fields)")
            print(f"  curl -X POST {sandbox_server.url}/_sandbox/key-requests "
                  f"-H 'authorization: {dashboard_secret}' "
                  f"-d '{{\"developer\": \"dave@example.com\", \"policies\": [\"{free}\"]}}'")
        if portal_server:
            print(f"  curl -X POST {portal_server.url}/_sandbox/access-requests "
                  f"-H 'authorization: {portal_token}' "
                  "-d '{\"user\": \"dave@example.com\", \"products\": [\"Free\"], "
                  "\"plan\": \"Free plan\"}'")
        sys.stdout.flush()
        # What the log holds now was reported above: from here on, each new decision (or
        # failure to decide) is printed once.
        seen = {entry["id"] for entry in st.entries(1000)}
        while True:
            time.sleep(1)
            for entry in reversed(st.entries(20)):
                if entry["id"] not in seen and entry["event"] in ("decided", "failed"):
                    seen.add(entry["id"])
                    print(report.describe(entry), flush=True)
    except ApproverError:
        log_file.flush()
        print(f"service log ({log_path}):\n" + log_path.read_text()[-3000:], file=sys.stderr)
        raise


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
