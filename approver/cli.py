"""The `approver` command."""

from __future__ import annotations

import argparse
import json
import sys
import time

from approver import config, logs
from approver.errors import ApproverError


def cmd_web(args) -> int:
    """Run the web tier under gunicorn."""
    from gunicorn.app.base import Application

    from approver.web import create_app

    app = create_app(config.from_env())  # fail here, with a clear message, not in a worker

    class Web(Application):
        def init(self, parser, opts, args):
            return None

        def load_config(self):
            self.load_config_from_module_name_or_filename(args.config)
            if args.bind:
                self.cfg.set("bind", args.bind)
            if args.workers:
                self.cfg.set("workers", args.workers)

        def load(self):
            return app

    Web().run()
    return 0


def cmd_worker(args) -> int:
    """Run an RQ worker on the service's queue, with its scheduler."""
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    from approver import enqueue, runtime

    rt = runtime.current()
    rt.settings.require_dashboard()
    rt.rules.current()  # refuse to start on rules that do not load
    enqueue.reconcile(rt.queue, rt.settings.reconcile_interval)
    # SimpleWorker runs jobs in its own process: the default forking Worker pays ~45 ms per
    # job re-importing the job module in a fresh child, 10x our whole decision. A job's
    # crash cannot corrupt anything (state is in Redis, written before each Dashboard
    # call), and RQ still enforces job_timeout with SIGALRM. Scale with more processes.
    worker = SimpleWorker(
        [rt.queue], connection=rt.redis, serializer=JSONSerializer, name=args.name
    )
    worker.work(burst=args.burst, with_scheduler=True, logging_level=args.log_level)
    return 0


def cmd_reconcile(args) -> int:
    """Queue every pending key request not decided yet."""
    from approver import reconcile, runtime

    rt = runtime.current()
    while True:
        result = reconcile.run(rt)
        print(json.dumps(result.to_dict()))
        if args.once:
            return 0
        time.sleep(rt.settings.reconcile_interval)


def cmd_sandbox(args) -> int:
    """Run the sandbox Dashboard alone."""
    from approver.sandbox import run

    host, _, port = args.bind.rpartition(":")
    print(f"sandbox Dashboard on http://{args.bind} (authorization: {args.secret})",
          file=sys.stderr)
    run(host or "127.0.0.1", int(port), args.secret, seed=args.seed,
        webhook_url=args.webhook_url)
    return 0


def cmd_demo(args) -> int:
    """Everything on one machine: embedded Redis, sandbox Dashboard, web tier, a worker."""
    from approver import demo

    return demo.main(once=args.once, port=args.port)


def cmd_decisions_list(args) -> int:
    """Print the latest decision-log entries."""
    from approver import runtime

    for entry in runtime.current().store.entries(args.limit):
        if args.json:
            print(json.dumps(entry, sort_keys=True))
        else:
            print(_entry_line(entry))
    return 0


def cmd_decisions_show(args) -> int:
    """Print the state and history of one key request."""
    from approver import runtime

    store = runtime.current().store
    state = store.state(args.id)
    if state is None:
        print(f"no decision recorded for key request {args.id}", file=sys.stderr)
        return 1
    history = list(reversed(store.entries(200, request_id=args.id)))
    print(json.dumps({"state": state, "history": history}, indent=2, sort_keys=True))
    return 0


def _entry_line(entry: dict) -> str:
    what = entry.get("outcome") or ""
    rule = entry.get("rule")
    tail = entry.get("reason") or entry.get("error") or ""
    return (f"{entry['at']}  {entry['event']:<12} {entry['request_id']}  {what:<8}"
            f" {('rule=' + rule) if rule else '':<28} {tail}").rstrip()


def cmd_rules_check(args) -> int:
    """Validate rule files."""
    from approver.rules import check

    path = args.path or config.from_env().rules_path
    problems = check(path)
    for problem in problems:
        print(problem)
    if problems:
        return 1
    print(f"{path}: ok")
    return 0


def cmd_rules_test(args) -> int:
    """Run the rule test cases."""
    from approver.rules import run_rule_tests

    report = run_rule_tests(args.path or config.from_env().rules_path)
    print(report.render() if hasattr(report, "render") else report)
    return 0 if report.ok else 1


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(prog="approver", description=__doc__)
    p.add_argument("--log-level", default="INFO")
    sub = p.add_subparsers(dest="command", required=True)

    web = sub.add_parser("web", help="the web tier under gunicorn")
    web.add_argument("--bind", help="host:port (default from the gunicorn config)")
    web.add_argument("--workers", type=int)
    web.add_argument("--config", default="python:approver.web.gunicorn_conf",
                     help="gunicorn config (e.g. deploy/gunicorn.conf.py)")
    web.set_defaults(func=cmd_web)

    worker = sub.add_parser("worker", help="an RQ worker on the service's queue")
    worker.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    worker.add_argument("--name")
    worker.set_defaults(func=cmd_worker)

    rec = sub.add_parser("reconcile", help="queue pending key requests not yet decided")
    rec.add_argument("--once", action="store_true")
    rec.set_defaults(func=cmd_reconcile)

    sandbox = sub.add_parser("sandbox", help="the sandbox Dashboard alone")
    sandbox.add_argument("--bind", default="127.0.0.1:3000")
    sandbox.add_argument("--secret", default="sandbox-secret")
    sandbox.add_argument("--seed", help="seed data file (JSON)")
    sandbox.add_argument("--webhook-url", help="where to POST key_request_event webhooks")
    sandbox.set_defaults(func=cmd_sandbox)

    demo = sub.add_parser("demo", help="everything on one machine, with sample requests")
    demo.add_argument("--once", action="store_true", help="exit once the samples are decided")
    demo.add_argument("--port", type=int, default=8000, help="web tier port")
    demo.set_defaults(func=cmd_demo)

    decisions = sub.add_parser("decisions", help="the decision log")
    dsub = decisions.add_subparsers(dest="decisions_command", required=True)
    dlist = dsub.add_parser("list", help="latest entries")
    dlist.add_argument("--limit", type=int, default=20)
    dlist.add_argument("--json", action="store_true")
    dlist.set_defaults(func=cmd_decisions_list)
    dshow = dsub.add_parser("show", help="one key request's state and history")
    dshow.add_argument("id")
    dshow.set_defaults(func=cmd_decisions_show)

    rules = sub.add_parser("rules", help="check and test rule files")
    rsub = rules.add_subparsers(dest="rules_command", required=True)
    rcheck = rsub.add_parser("check", help="validate rule files")
    rcheck.add_argument("path", nargs="?")
    rcheck.set_defaults(func=cmd_rules_check)
    rtest = rsub.add_parser("test", help="run the rule test cases")
    rtest.add_argument("path", nargs="?")
    rtest.set_defaults(func=cmd_rules_test)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command; errors we expect are one clear line and exit status 2."""
    args = parser().parse_args(argv)
    logs.setup(args.log_level.upper())
    try:
        return args.func(args)
    except ApproverError as exc:
        print(f"approver: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
