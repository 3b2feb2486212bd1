"""The `approver` command."""

from __future__ import annotations

import argparse
import atexit
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from redis.exceptions import RedisError

from approver import config, logs
from approver.errors import ApproverError
from approver.terminal import printable, printable_lines

log = logging.getLogger("approver.cli")


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

    from approver.web import create_app

    app = create_app(config.from_env())  # fail here, with a clear message, not in a worker

    class Web(Application):
        def init(self, parser, opts, args):
            return None

        def load_config(self):
            self.load_config_from_module_name_or_filename(args.config)
            binds = [args.bind] if args.bind else list(self.cfg.bind)
            if app.extensions["approver"].settings.internal_bind:
                # /metrics and detailed /readyz answer only there (approver.web.health).
                binds.append(app.extensions["approver"].settings.internal_bind)
            self.cfg.set("bind", binds)
            if args.workers:
                self.cfg.set("workers", args.workers)

        def load(self):
            return app

    Web().run()
    return 0


def cmd_worker(args) -> int:
    """Run an RQ worker on the service's queues, with its scheduler."""
    from approver.pipeline import runtime
    from approver.process import worker

    rt = runtime.current()
    rt.settings.require_a_portal()
    logs.redact_values(rt.settings.secret_values())
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

    host, _, port = args.bind.rpartition(":")
    if args.portal == "new":
        from approver.sandbox import portal

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

    return demo.main(once=args.once, port=args.port, portal=args.portal)


def cmd_decisions_list(args) -> int:
    """Print the latest decision-log entries, or the waiting or failed requests."""
    from approver.pipeline import runtime

    rt = runtime.current()
    if args.waiting:
        rows = [{"request_id": rid, "deadline": _iso(deadline), **_brief(rt.store, rid)}
                for rid, deadline in rt.store.waiting()]
    elif args.failed:
        rows = _failed(rt)
    else:
        rows = rt.store.entries(args.limit)
    for row in rows[: args.limit]:
        print(json.dumps(row, sort_keys=True, default=str) if args.json else _entry_line(row))
    if not rows and not args.json:
        print("nothing to show", file=sys.stderr)
    return 0


def _iso(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def _brief(store, request_id: str) -> dict:
    state = store.state(request_id) or {}
    return {k: state.get(k) for k in ("state", "outcome", "rule", "reason", "developer_id",
                                      "decided_at", "error")}


def _failed(rt) -> list[dict]:
    from rq.registry import FailedJobRegistry

    registry = FailedJobRegistry(queue=rt.queue)
    rows = []
    for job_id in registry.get_job_ids():
        job = rt.queue.fetch_job(job_id)
        result = job.latest_result() if job is not None else None
        # The exception's last line: "module.Class: message".
        cause = ((result.exc_string or "").strip().splitlines() or [""])[-1] if result else ""
        request_id = job.args[0] if job is not None and job.args else job_id
        brief = _brief(rt.store, request_id) if isinstance(request_id, str) else {}
        rows.append({"job_id": job_id, "request_id": request_id, "event": "failed",
                     "at": job.ended_at.isoformat() if job and job.ended_at else "",
                     **brief, "error": (brief.get("error") or cause)[:300]})
    return rows


def cmd_decisions_verify(args) -> int:
    """Check the decision log's hash chain (in Redis, or in an export); name the first
    broken entry."""
    from approver.pipeline import runtime
    from approver.state import check_chain

    if args.file:
        with open(args.file, encoding="utf-8") as lines:
            found = check_chain(_export_entries(lines))
        where = args.file
    else:
        found = runtime.current().store.verify_log()
        where = "the log"
    if found.why:
        at = f"entry {found.broken}" if found.broken else where
        print(f"BROKEN after {found.checked} good entries: {at}: {found.why}")
        return 1
    print(f"ok: {found.checked} entries, chain intact")
    if found.anchored:
        print(f"anchored at the oldest entry kept, {found.first}: the entries before it were "
              f"trimmed (retention) or exported apart; it links to hash {found.anchor[:16]}…, "
              "the last hash of the export that holds them")
    return 0


def _export_line(entry_id: str, prev: str, digest: str, body: str) -> str:
    # The entry's own fields, then its place in the chain: enough to check it again.
    return json.dumps({**json.loads(body), "id": entry_id, "prev": prev, "hash": digest},
                      sort_keys=True) + "\n"


def _export_entries(lines):
    """(id, prev, hash, body) of each line of an export, as the log held them."""
    for n, line in enumerate(lines, 1):
        try:
            entry = json.loads(line)
            chain = [entry.pop(k) for k in ("id", "prev", "hash")]
        except (ValueError, KeyError, AttributeError, TypeError):
            raise ApproverError(f"line {n} is not an exported log entry") from None
        yield chain[0], chain[1], chain[2], json.dumps(entry, sort_keys=True, default=str)


def _log_id(name: str, value: str | None, default: str) -> str:
    """A log position for --since/--until: an RFC 3339 time or date (UTC if no zone)."""
    from datetime import UTC, datetime

    if not value:
        return default
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApproverError(f"{name} must be a date or time like 2026-11-01 or "
                            f"2026-11-01T12:00:00Z, got {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return str(int(moment.timestamp() * 1000))


def _tee(lines, out):
    for line in lines:
        out.write(line)
        yield line


def cmd_decisions_export(args) -> int:
    """Write the decision log, oldest first, as JSON lines, then check what was written."""
    from approver.pipeline import runtime
    from approver.state import check_chain

    since = _log_id("--since", args.since, "-")
    until = _log_id("--until", args.until, "+")
    if until != "+":
        until = f"({until}"  # --until is exclusive: consecutive exports do not overlap
    lines = (_export_line(*e) for e in runtime.current().store.log_entries(since, until))
    if args.output == "-":
        found = check_chain(_export_entries(_tee(lines, sys.stdout)))
    else:
        with open(args.output, "w", encoding="utf-8") as out:
            out.writelines(lines)
        with open(args.output, encoding="utf-8") as back:  # what is on disk, read back
            found = check_chain(_export_entries(back))
    if found.why:
        print(f"approver: the export does not verify: entry {found.broken}: {found.why}",
              file=sys.stderr)
        return 1
    links = f"links to {found.anchor[:16]}…" if found.anchored else "starts the chain"
    print(f"exported {found.checked} entries, chain verified in what was written"
          + (f"; the first ({found.first}) {links}" if found.checked else ""),
          file=sys.stderr)
    return 0


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

    from approver.pipeline import health, runtime

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
        "workers_last_report": reported.get("at"),
        "last_decisions": [
            {k: e.get(k) for k in ("at", "request_id", "outcome", "rule", "reason")}
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
    print(f"last decisions ({len(report['last_decisions'])}):")
    for e in report["last_decisions"]:
        print(printable(f"  {e['at']}  {e['request_id']}  {e['outcome']:<7} "
                        f"{e['rule'] or 'default':<26} {e['reason']}"))
    return 0


def cmd_billing_show(args) -> int:
    """A developer's billing state, waiting requests and keys this service approved."""
    from approver.pipeline import runtime

    rt = runtime.current()
    store = rt.store
    print(json.dumps({
        "developer_id": args.developer,
        "billing": rt.billing.get(args.developer),
        "waiting": store.waiting_for(args.developer),
        "approved_keys": store.approved_keys(args.developer),
    }, indent=2, sort_keys=True))
    return 0


def cmd_decisions_show(args) -> int:
    """Print the state and history of one key request."""
    from approver.pipeline import runtime

    store = runtime.current().store
    state = store.state(args.id)
    if state is None:
        print(f"no decision recorded for key request {args.id}", file=sys.stderr)
        return 1
    history = list(reversed(store.entries(200, request_id=args.id)))
    print(json.dumps({"state": state, "history": history}, indent=2, sort_keys=True))
    return 0


def cmd_review_list(args) -> int:
    """What awaits a person: the review inbox (and waiting requests, marked so)."""
    from approver.pipeline import review, runtime

    rows = review.items(runtime.current().store, portal=review.portal_name(args.portal),
                        rule=args.rule, older_than=args.older_than, email=args.email)
    if args.json:
        print(json.dumps(rows, sort_keys=True))
        return 0
    for row in rows:
        kind = "WAIT" if row["waiting"] else "REVIEW"
        print(printable(f"{row['id']:<26} {row['portal']:<7} {kind:<6} "
                        f"{review.age(row['age']):>7}  "
                        f"{row['developer_email'] or row['developer_id']:<32} "
                        f"{', '.join(row['policies']):<20} {row['rule']}: {row['reason']}"))
    if not rows:
        print("nothing awaits review", file=sys.stderr)
    return 0


def cmd_review_show(args) -> int:
    """One request as a person reviews it: its record, facts, trace and history."""
    from approver.pipeline import review, runtime

    shown = review.show(runtime.current().store, args.id)
    if shown is None:
        print(f"approver: no record of key request {args.id}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(shown, indent=2, sort_keys=True, default=str))
        return 0
    r = shown["request"]
    print(printable(f"key request {r['id']} ({r['portal']} portal): {r['state']}"
          + ("" if shown["in_inbox"] else f", {r['outcome']} by {r['decided_by'] or r['rule']}")))
    print(printable(f"developer: {r['developer_email'] or '?'} ({r['developer_id']})"))
    print(printable(f"asked for: {', '.join(r['policies'])}"))
    for name, value in r["fields"].items():
        print(printable(f"  field {name}: {value}"))
    print(printable(f"rule {r['rule']}: {r['reason']}  "
                    f"(rules revision {r['revision'] or '-'})"))
    print("facts:")
    for name, value in sorted(shown["facts"].items()):
        print(printable(f"  {name} = {json.dumps(value, default=str)}"))
    print("trace:")
    for step in shown["trace"]:
        print(printable(f"  {'MATCHED' if step.get('matched') else 'no':<7} "
                        f"{step.get('rule')}"))
    if shown["claim"]:
        c = shown["claim"]
        print(printable(f"claimed by {c['by']} ({c['via']}) at {c['claimed_at']}: "
                        f"{c['outcome']}"))
    print("history:")
    for entry in shown["history"]:
        print(printable("  " + _entry_line(entry)))
    return 0


def cmd_review_decide(args) -> int:
    """A person approves or denies a request in the review inbox, applied in Tyk now."""
    import getpass
    import socket

    from approver.pipeline import decide, jobs, review, runtime

    rt = runtime.current()
    try:
        origin = f"{getpass.getuser()}@{socket.gethostname()}"
    except (KeyError, OSError):
        origin = socket.gethostname()
    try:
        taken = review.claim(rt.store, args.id, args.outcome, args.reason,
                             review.clean_name(args.by), "cli", origin)
    except review.Refused as exc:
        print(printable(f"approver: {exc}"), file=sys.stderr)
        return 1
    try:
        result = jobs.when_free(lambda: decide.decide_by_person(
            rt, args.id, taken["outcome"], taken["reason"], taken["by"], "cli",
            **review.audit_fields(taken)))
    finally:
        review.release(rt.store, args.id, taken["claim_id"])
    if result.state == "refused":
        print(printable(f"approver: key request {args.id}: {result.reason}"), file=sys.stderr)
        return 1
    done = {"approve": "approved", "deny": "denied"}[result.outcome]
    print(f"key request {args.id} {done} by {taken['by']}"
          + (" (shadow mode: recorded, not applied)" if result.state == "shadowed" else
             " in Tyk"))
    return 0


def cmd_admin_add(args) -> int:
    """Add a local console account (or set its password): prompted, or one line of stdin."""
    import getpass

    from approver.pipeline import runtime
    from approver.state import accounts

    accounts.check_name(args.name)
    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            print("approver: the passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    new = accounts.add(runtime.current().store, args.name, password)
    print(f"{'added' if new else 'changed the password of'} console account {args.name}")
    return 0


def cmd_admin_remove(args) -> int:
    """Remove a local console account and end its sessions."""
    from approver.pipeline import runtime
    from approver.state import accounts

    if not accounts.remove(runtime.current().store, args.name):
        print(f"approver: no console account {args.name}", file=sys.stderr)
        return 1
    print(f"removed console account {args.name}")
    return 0


def cmd_admin_list(args) -> int:
    """List the local console accounts."""
    from approver.pipeline import runtime
    from approver.state import accounts

    for name in accounts.names(runtime.current().store):
        print(name)
    return 0


def _entry_line(entry: dict) -> str:
    what = entry.get("outcome") or entry.get("status") or ""
    rule = entry.get("rule")
    tail = entry.get("reason") or entry.get("error") or ""
    when = entry.get("at") or entry.get("deadline") or ""
    return printable(f"{when}  {entry.get('event') or entry.get('state') or '':<12} "
                     f"{entry.get('request_id') or entry.get('developer_id') or '':<26} "
                     f"{what:<8} {('rule=' + rule) if rule else '':<28} {tail}").rstrip()


def cmd_rules_check(args) -> int:
    """Validate rule files; also say what the running workers have in force."""
    from approver.rules import check, load_rules

    settings = config.from_env()
    path = args.path or settings.rules_path
    problems = check(path)
    for problem in problems:
        print(printable(problem))
    if not problems:
        print(f"{path}: ok, revision {load_rules(path).revision}")
    _print_running_rules(settings)
    return 1 if problems else 0


def _print_running_rules(settings) -> None:
    """The revision the workers reported, if Redis answers at once (else nothing)."""
    from redis.exceptions import RedisError

    from approver.state import Store, connection

    try:
        health = Store(connection.connect(settings, timeout=0.3)).health()
    except RedisError:
        return
    if health.get("rules_revision"):
        print(printable(f"workers run revision {health['rules_revision']} "
                        f"(reported {health.get('at')}; "
                        f"{health.get('rules_reload_failures') or 0} edits failed to load)"))
    if health.get("rules_error"):
        print(printable(f"the last edit did not load, the previous rules stay in force: "
                        f"{health['rules_error']}"))


def cmd_rules_test(args) -> int:
    """Run the rule test cases."""
    from approver.rules import run_rule_tests

    report = run_rule_tests(args.path or config.from_env().rules_path)
    print(printable_lines(str(report)))
    return 0 if report.ok else 1


def cmd_rules_facts(args) -> int:
    """List the rule vocabulary: facts (plugins included), operators, combinators."""
    from approver.rules import default_registry, vocabulary_markdown

    print(vocabulary_markdown(default_registry()))
    return 0


def cmd_rules_explain(args) -> int:
    """Dry run: the decision on a live request or an event file, with its trace."""
    from approver.pipeline import decide, runtime
    from approver.rules import FactContext, Facts, evaluate, load_rules
    from approver.rules.explain import render

    ruleset = load_rules(args.rules or config.from_env().rules_path)
    if args.request:
        rt = runtime.current()
        request = decide.fetch(rt, args.request)
        if request is None:
            raise ApproverError(f"key request {args.request} does not exist")
        facts = Facts(decide.gather(rt, request))
    else:
        try:
            document = json.loads(Path(args.file).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ApproverError(f"{args.file}: cannot read JSON: {exc}") from None
        if not isinstance(document, dict):
            raise ApproverError(f"{args.file}: expected a JSON object")
        if isinstance(document.get("data"), dict) and "event" in document:
            data = document["data"]  # a Tyk webhook payload: take what it embeds
            facts = Facts(FactContext(request=data, developer=data.get("portal_developer")))
        else:
            facts = Facts.from_values(document)  # a mapping of fact names to values
    decision = evaluate(ruleset, facts)
    if args.json:
        print(json.dumps(decision.to_dict(), indent=2, sort_keys=True, default=str))
    else:
        print(printable_lines(render(decision)))  # the request's fields are anyone's text
    return 0


def cmd_rules_backtest(args) -> int:
    """Replay recorded decisions against candidate rules."""
    from approver.pipeline import backtest, runtime
    from approver.rules import load_rules

    result = backtest.run(runtime.current().store, load_rules(args.path), limit=args.limit)
    print(printable_lines(result.render(args.show)))  # recorded reasons and ids are data
    return 0


def cmd_rules_docs(args) -> int:
    """Write the vocabulary into docs/rules.md (between its markers; the rest is kept)."""
    from approver.rules import builtin_registry, vocabulary_markdown
    from approver.rules.docs import with_vocabulary

    text = vocabulary_markdown(builtin_registry())
    if args.output == "-":
        print(text)
        return 0
    path = Path(args.output)
    try:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        path.write_text(with_vocabulary(current, text), encoding="utf-8")
    except OSError as exc:
        raise ApproverError(f"cannot write {args.output} ({exc.strerror}): give "
                            "--output FILE, or --output - for the screen") from None
    return 0


def _age(text: str) -> int:
    try:
        return config._duration("--older-than", text) or 0
    except ApproverError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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
    worker.add_argument("--metrics-port", type=int,
                        help="serve this worker's Prometheus metrics (Dashboard calls) here")
    worker.add_argument("--metrics-addr", default="127.0.0.1")
    worker.set_defaults(func=cmd_worker)

    rec = sub.add_parser("reconcile", help="queue pending key requests not yet decided")
    rec.add_argument("--once", action="store_true")
    rec.set_defaults(func=cmd_reconcile)

    sandbox = sub.add_parser("sandbox", help="the sandbox Dashboard alone")
    sandbox.add_argument("--bind", default="127.0.0.1:3000")
    sandbox.add_argument("--secret", default="sandbox-secret")
    sandbox.add_argument("--seed", help="seed data file (JSON)")
    sandbox.add_argument("--webhook-url", help="where to POST key_request_event webhooks")
    sandbox.add_argument("--portal", choices=("classic", "new"), default="classic",
                         help="simulate the classic Dashboard or the new Developer Portal")
    sandbox.add_argument("--webhook-header", action="append", metavar="NAME:VALUE",
                         help="new portal: a custom header sent with each webhook")
    sandbox.set_defaults(func=cmd_sandbox)

    demo = sub.add_parser("demo", help="everything on one machine, with sample requests")
    demo.add_argument("--once", action="store_true", help="exit once the samples are decided")
    demo.add_argument("--port", type=int, default=8000, help="web tier port")
    demo.add_argument("--portal", choices=("classic", "new", "both"), default="classic",
                      help="which sandbox portal(s) to decide for, with the same rules")
    demo.set_defaults(func=cmd_demo)

    decisions = sub.add_parser("decisions", help="the decision log")
    dsub = decisions.add_subparsers(dest="decisions_command", required=True)
    dlist = dsub.add_parser("list", help="latest entries")
    dlist.add_argument("--limit", type=int, default=20)
    dlist.add_argument("--json", action="store_true")
    which = dlist.add_mutually_exclusive_group()
    which.add_argument("--waiting", action="store_true", help="requests waiting (billing)")
    which.add_argument("--failed", action="store_true", help="jobs that failed for good")
    dlist.set_defaults(func=cmd_decisions_list)
    dverify = dsub.add_parser("verify", help="check the log's hash chain")
    dverify.add_argument("--file", help="check an export (JSON lines) instead of Redis")
    dverify.set_defaults(func=cmd_decisions_verify)
    dexport = dsub.add_parser("export", help="the log as JSON lines, oldest first, verified")
    dexport.add_argument("--output", default="-")
    dexport.add_argument("--since", help="from this time on (RFC 3339, or a date; UTC)")
    dexport.add_argument("--until", help="before this time (exclusive)")
    dexport.set_defaults(func=cmd_decisions_export)

    status = sub.add_parser("status", help="queues, failures, waits, rules, Dashboard")
    status.add_argument("--last", type=int, default=10, help="decisions to show")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)

    replay = sub.add_parser("replay", help="run a failed job again")
    replay.add_argument("id", help="key request id or failed job id")
    replay.set_defaults(func=cmd_replay)

    billing = sub.add_parser("billing", help="billing state")
    bsub = billing.add_subparsers(dest="billing_command", required=True)
    bshow = bsub.add_parser("show", help="one developer's billing state")
    bshow.add_argument("developer", help="Tyk developer id")
    bshow.set_defaults(func=cmd_billing_show)
    dshow = dsub.add_parser("show", help="one key request's state and history")
    dshow.add_argument("id")
    dshow.set_defaults(func=cmd_decisions_show)

    reviews = sub.add_parser("review", help="the review inbox: what awaits a person")
    vsub = reviews.add_subparsers(dest="review_command", required=True)
    vlist = vsub.add_parser("list", help="requests awaiting a person (waiting ones marked)")
    vlist.add_argument("--portal", choices=("classic", "new"))
    vlist.add_argument("--rule", help="only those this rule sent to review")
    vlist.add_argument("--older-than", type=_age, metavar="AGE",
                       help="only those waiting longer than this (90s, 30m, 2h, 3d)")
    vlist.add_argument("--email", help="only developers whose email contains this")
    vlist.add_argument("--json", action="store_true", help="one JSON array")
    vlist.set_defaults(func=cmd_review_list)
    vshow = vsub.add_parser("show", help="a request, its facts, trace and history")
    vshow.add_argument("id")
    vshow.add_argument("--json", action="store_true")
    vshow.set_defaults(func=cmd_review_show)
    for outcome in ("approve", "deny"):
        decide = vsub.add_parser(outcome, help=f"{outcome} a request in the inbox, in Tyk now")
        decide.add_argument("id")
        decide.add_argument("--reason", required=outcome == "deny", default="",
                            help="why (recorded; emailed to the developer if configured)")
        decide.add_argument("--by", required=True, metavar="NAME", help="who decides")
        decide.set_defaults(func=cmd_review_decide, outcome=outcome)

    admin = sub.add_parser("admin", help="local console accounts")
    asub = admin.add_subparsers(dest="admin_command", required=True)
    aadd = asub.add_parser("add", help="add an account (password prompted or from stdin)")
    aadd.add_argument("name")
    aadd.set_defaults(func=cmd_admin_add)
    aremove = asub.add_parser("remove", help="remove an account and end its sessions")
    aremove.add_argument("name")
    aremove.set_defaults(func=cmd_admin_remove)
    asub.add_parser("list", help="the accounts' names").set_defaults(func=cmd_admin_list)

    rules = sub.add_parser("rules", help="check and test rule files")
    rsub = rules.add_subparsers(dest="rules_command", required=True)
    rcheck = rsub.add_parser("check", help="validate rule files")
    rcheck.add_argument("path", nargs="?")
    rcheck.set_defaults(func=cmd_rules_check)
    rtest = rsub.add_parser("test", help="run the rule test cases")
    rtest.add_argument("path", nargs="?")
    rtest.set_defaults(func=cmd_rules_test)
    rsub.add_parser("facts", help="list facts, operators and combinators").set_defaults(
        func=cmd_rules_facts)
    rexplain = rsub.add_parser("explain", help="dry run with the trace; nothing applied")
    source = rexplain.add_mutually_exclusive_group(required=True)
    source.add_argument("--request", help="a key request id, read from the Dashboard")
    source.add_argument("--file", help="a Tyk event JSON file, or a JSON map of facts")
    rexplain.add_argument("--rules", help="rules file or folder (default APPROVER_RULES)")
    rexplain.add_argument("--json", action="store_true")
    rexplain.set_defaults(func=cmd_rules_explain)
    rback = rsub.add_parser("backtest", help="replay recorded decisions against PATH")
    rback.add_argument("path")
    rback.add_argument("--limit", type=int, default=10_000, help="log entries to read")
    rback.add_argument("--show", type=int, default=20, help="changed requests to list")
    rback.set_defaults(func=cmd_rules_backtest)
    rdocs = rsub.add_parser("docs", help="write the vocabulary into docs/rules.md")
    rdocs.add_argument("--output", default="docs/rules.md")
    rdocs.set_defaults(func=cmd_rules_docs)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command; errors we expect are one clear line and exit status 2."""
    args = parser().parse_args(argv)
    logs.setup(args.log_level.upper())
    try:
        code = args.func(args)
        sys.stdout.flush()  # here, where a closed pipe is caught, not at exit
        return code
    except BrokenPipeError:
        # The reader stopped reading (`approver status | head`): stop quietly, as cat does.
        _stdout_to_devnull()
        return 141  # what a shell reports for a command ended by SIGPIPE
    except (ApproverError, OSError) as exc:  # OSError: a file named on the command line
        print(f"approver: {printable(exc)}", file=sys.stderr)
        return 2
    except RedisError as exc:
        from approver.state import connection

        print(f"approver: Redis ({connection.redis_target(config.from_env())}): "
              f"{printable(connection.describe_redis_error(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _stdout_to_devnull() -> None:
    """Point stdout at /dev/null, so the flush at exit finds no closed pipe either."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a file (a test's capture): nothing is flushed to a pipe at exit
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)
