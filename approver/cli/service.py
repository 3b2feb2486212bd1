"""The service's processes and their care: `web`, `worker`, `reconcile`, `sandbox`, `demo`,
`status`, `replay`."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import sys
import tempfile
import time

from approver import config
from approver.cli.parsing import arg, command, count
from approver.errors import ApproverError
from approver.terminal import printable


def cmd_web(args) -> int:
    """Run the web tier under gunicorn."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Before prometheus_client is imported: the gunicorn workers' metrics add up here.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="approver-metrics-")
        master = os.getpid()
        # Removed when the master exits (gunicorn's workers leave through here too).
        atexit.register(lambda: os.getpid() == master and shutil.rmtree(
            os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True))
    from gunicorn.app.base import Application

    from approver import logs

    # Fail here, with a clear message, not in a worker; but without building the app: the
    # master would keep its ~140 MB (Flask, the console, the rules) for nothing. Each
    # worker builds it after the fork (create_app makes these same checks).
    settings = config.from_env().require_webhook_tokens().require_secret_key()
    logs.redact_values(settings.secret_values())  # the master's own log lines too

    class Web(Application):
        def init(self, parser, opts, args):
            return None

        def load_config(self):
            self.load_config_from_module_name_or_filename(args.config)
            binds = [args.bind] if args.bind else list(self.cfg.bind)
            if settings.internal_bind:
                # /metrics and detailed /readyz answer only there (approver.web.health).
                binds.append(settings.internal_bind)
            self.cfg.set("bind", binds)
            if args.workers:
                self.cfg.set("workers", args.workers)

        def load(self):
            from approver.web import create_app

            return create_app(settings)

    Web().run()
    return 0

def cmd_worker(args) -> int:
    """Run an RQ worker on the service's queues, with its scheduler."""
    from approver.pipeline import runtime
    from approver.process import worker

    rt = runtime.current()
    rt.settings.require_a_portal()
    rt.rules.current()  # refuse to start on rules that do not load
    if args.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port, addr=args.metrics_addr)
    return worker.run(rt, name=args.name, burst=args.burst, log_level=args.log_level)

def cmd_reconcile(args) -> int:
    """Queue every pending key request not decided yet."""
    from approver.pipeline import reconcile, runtime

    rt = runtime.current()
    while True:
        result = reconcile.run(rt)
        print(json.dumps(result.to_dict()))
        if args.once:
            return 0
        time.sleep(rt.settings.reconcile_interval)

def cmd_sandbox(args) -> int:
    """Run the sandbox Dashboard (or, with --portal new, the sandbox Developer Portal) alone."""
    from approver.sandbox import run

    host, _, port = config._bind("--bind", args.bind).rpartition(":")
    if args.portal == "new":
        from approver.sandbox import portal

        if bad := [h for h in args.webhook_header or [] if ":" not in h]:
            raise ApproverError(f"--webhook-header must be NAME:VALUE, got {bad[0]!r}")
        headers = dict(h.split(":", 1) for h in args.webhook_header or [])
        print(f"sandbox Developer Portal on http://{args.bind}/portal-api "
              f"(Authorization: {args.secret})", file=sys.stderr)
        portal.run(host or "127.0.0.1", int(port), args.secret, seed=args.seed,
                   webhook_url=args.webhook_url,
                   webhook_headers={k.strip(): v.strip() for k, v in headers.items()})
        return 0
    print(f"sandbox Dashboard on http://{args.bind} (authorization: {args.secret})",
          file=sys.stderr)
    run(host or "127.0.0.1", int(port), args.secret, seed=args.seed,
        webhook_url=args.webhook_url)
    return 0

def cmd_demo(args) -> int:
    """Everything on one machine: embedded Redis, sandbox Dashboard, web tier, a worker."""
    from approver.process import demo

    return demo.main(once=args.once, port=args.port, portal=args.portal, seed=args.seed)

def cmd_replay(args) -> int:
    """Run a failed decision job again (by key request id or job id)."""
    from rq.registry import FailedJobRegistry

    from approver.pipeline import decide, enqueue, runtime
    from approver.pipeline.sources import MalformedId
    from approver.tyk import DashboardError

    rt = runtime.current()
    registry = FailedJobRegistry(queue=rt.queue)
    job_id = args.id if args.id in registry else enqueue.decide_job_id(args.id)
    if job_id in registry:
        registry.requeue(job_id)
        print(f"requeued {job_id}")
        return 0
    if not enqueue.ID_PATTERN.match(args.id):
        raise ApproverError(f"{args.id!r} is not a key request id or a failed job id")
    if rt.store.state(args.id) is None:
        try:
            known = decide.fetch(rt, args.id) is not None
        except MalformedId:
            known = False  # Tyk refused the id (400 "Invalid key request ID.")
        except DashboardError as exc:
            if exc.status is None or exc.status >= 500:
                raise
            known = False  # Tyk refused the id (400 "Invalid key request ID.")
        if not known:
            raise ApproverError(f"{args.id!r} is neither a failed job, nor a key request "
                                "with a recorded decision, nor one Tyk knows")
    queued = enqueue.decision(rt.queue, args.id, "replay", rt.settings.retry_delays,
                              reclaim=True)
    print(f"queued {enqueue.decide_job_id(args.id)}" if queued else "already queued")
    return 0

def cmd_status(args) -> int:
    """Queues, failed jobs, waits, the last decisions, rules and the Dashboard, at a glance."""
    from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

    from approver.pipeline import health, runtime, versions

    rt = runtime.current()
    queue = rt.queue
    reported = rt.store.health()
    live = health.publish_health(rt) if rt.settings.dashboard_url else {}
    report = {
        "queue": {"name": queue.name, "queued": queue.count,
                  "running": StartedJobRegistry(queue=queue).count,
                  "scheduled": ScheduledJobRegistry(queue=queue).count,
                  "failed": FailedJobRegistry(queue=queue).count},
        "waiting_requests": len(rt.store.waiting()),
        "rules": {"path": str(rt.settings.rules_path),
                  "revision": live.get("rules_revision") or reported.get("rules_revision"),
                  "error": live.get("rules_error") or reported.get("rules_error") or None},
        "dashboard": live.get("dashboard") or reported.get("dashboard") or "not configured",
        "versions": versions.report(rt),
        "workers_last_report": reported.get("at"),
        "last_decisions": [
            {k: e.get(k) for k in ("at", "request_id", "outcome", "rule", "reason",
                                   "developer_email", "decided_by")}
            for e in rt.store.entries(200) if e["event"] == "decided"][: args.last],
    }
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
        return 0
    q = report["queue"]
    print(f"queue {q['name']}: {q['queued']} queued, {q['running']} running, "
          f"{q['scheduled']} scheduled (retries, timers), {q['failed']} failed")
    print(f"waiting requests: {report['waiting_requests']}")
    rules = report["rules"]
    print(printable(f"rules: {rules['path']} revision {rules['revision'] or '-'}"
                    + (f"  PROBLEM: {rules['error']}" if rules["error"] else "")))
    print(printable(f"dashboard: {report['dashboard']}"))
    for name, seen in report["versions"].items():
        print(printable(versions.describe(name, seen)))
    print(f"last decisions ({len(report['last_decisions'])}):")
    for e in report["last_decisions"]:
        by = e["decided_by"] or f"rule={e['rule'] or 'default'}"
        print(printable(f"  {e['at']}  {e['request_id']}  {e['outcome']:<7} "
                        f"{e['developer_email'] or '-':<28} {by:<26} {e['reason']}"))
    return 0


def add_processes(sub) -> None:
    """`web`, `worker`, `reconcile`, `sandbox`, `demo`."""
    command(sub, "web", cmd_web, "the web tier under gunicorn",
            arg("--bind", help="host:port (default from the gunicorn config)"),
            arg("--workers", type=int),
            arg("--config", default="python:approver.web.gunicorn_conf",
                help="gunicorn config (e.g. deploy/gunicorn.conf.py)"))
    command(sub, "worker", cmd_worker, "an RQ worker on the service's queue",
            arg("--burst", action="store_true", help="exit when the queue is empty"),
            arg("--name"),
            arg("--metrics-port", type=int,
                help="serve this worker's Prometheus metrics (Dashboard calls) here"),
            arg("--metrics-addr", default="127.0.0.1"))
    command(sub, "reconcile", cmd_reconcile, "queue pending key requests not yet decided",
            arg("--once", action="store_true"))
    command(sub, "sandbox", cmd_sandbox, "the sandbox Dashboard alone",
            arg("--bind", default="127.0.0.1:3000"),
            arg("--secret", default="sandbox-secret"),
            arg("--seed", help="seed data file (JSON)"),
            arg("--webhook-url", help="where to POST key_request_event webhooks"),
            arg("--portal", choices=("classic", "new"), default="classic",
                help="simulate the classic Dashboard or the new Developer Portal"),
            arg("--webhook-header", action="append", metavar="NAME:VALUE",
                help="new portal: a custom header sent with each webhook"))
    command(sub, "demo", cmd_demo, "everything on one machine, with sample requests",
            arg("--once", action="store_true", help="exit once the samples are decided"),
            arg("--port", type=int, default=8000, help="web tier port"),
            arg("--portal", choices=("classic", "new", "both"), default="classic",
                help="which sandbox portal(s) to decide for, with the same rules"),
            arg("--seed", metavar="FILE", help="the sandbox Dashboard's data: developers "
                "(with sign-up fields), policies, catalogue (approver/sandbox/seed.json's "
                "shape)"))


def add_operations(sub) -> None:
    """`status`, `replay`."""
    command(sub, "status", cmd_status,
            "queues, failures, waits, rules, Dashboard, Tyk versions",
            arg("--last", type=count, default=10, help="decisions to show"),
            arg("--json", action="store_true"))
    command(sub, "replay", cmd_replay, "run a failed job again",
            arg("id", help="key request id or failed job id"))
