"""`approver decisions`: the decision log (list, show, verify, export)."""

from __future__ import annotations

import json
import sys

from approver.cli.parsing import arg, command, count, group, one_of
from approver.errors import ApproverError
from approver.state import export_line, read_export
from approver.terminal import printable


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
    if rows and not args.json:
        print(ENTRY_HEADER)
    for row in rows[: args.limit]:
        print(json.dumps(row, sort_keys=True, default=str) if args.json else entry_line(row))
    if not rows and not args.json:
        print("nothing to show", file=sys.stderr)
    return 0

def _iso(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")

def _brief(store, request_id: str) -> dict:
    state = store.state(request_id) or {}
    return {k: state.get(k) for k in ("state", "outcome", "rule", "reason", "developer_id",
                                      "developer_email", "decided_by", "decided_at", "error")}

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
            found = check_chain(read_export(lines))
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
    lines = (export_line(*e) for e in runtime.current().store.log_entries(since, until))
    if args.output == "-":
        found = check_chain(read_export(_tee(lines, sys.stdout)))
    else:
        with open(args.output, "w", encoding="utf-8") as out:
            out.writelines(lines)
        with open(args.output, encoding="utf-8") as back:  # what is on disk, read back
            found = check_chain(read_export(back))
    if found.why:
        print(f"approver: the export does not verify: entry {found.broken}: {found.why}",
              file=sys.stderr)
        return 1
    links = f"links to {found.anchor[:16]}…" if found.anchored else "starts the chain"
    print(f"exported {found.checked} entries, chain verified in what was written"
          + (f"; the first ({found.first}) {links}" if found.checked else ""),
          file=sys.stderr)
    return 0

def cmd_decisions_show(args) -> int:
    """Print one key request: who asked for what, the decision, the trace and the history
    (`--json`: its state and history as recorded)."""
    from approver.pipeline import runtime, steps

    store = runtime.current().store
    state = store.state(args.id)
    if state is None:
        print(f"no decision recorded for key request {args.id}", file=sys.stderr)
        return 1
    if args.json:
        history = list(reversed(store.entries(200, request_id=args.id)))
        print(json.dumps({"state": state, "history": history}, indent=2, sort_keys=True))
        return 0
    print_request(steps.show(store, args.id))
    return 0

def print_request(shown: dict) -> None:
    """A request as `review show` and `decisions show` print it."""
    from approver.rules import explain

    r = shown["request"]
    say = [f"key request {r['id']} ({r['portal']} portal): {r['state']}"
           + ("" if shown["in_inbox"] else f", {r['outcome']} by {r['decided_by'] or r['rule']}"),
           "developer: " + " · ".join(filter(None, (
               r["developer_email"] or "?", r["developer_name"], r["company"])))
           + f" ({r['developer_id']})",
           f"asked for: {', '.join(r['policies'])}"
           + (f" (APIs: {', '.join(r['apis'])})" if r["apis"] else "")]
    say += [f"  sign-up field {name}: {value}" for name, value in r["signed_up"].items()]
    say += [f"  request field {name}: {value}" for name, value in r["fields"].items()]
    if r["review_rule"]:
        say.append(f"sent to review by rule {r['review_rule']}: {r['review_reason']}")
        say.append(f"decided by {r['decided_by']}: {r['outcome']} ({r['reason']})")
    else:
        say.append(f"rule {r['rule']}: {r['reason']}")
    if r.get("access_ends"):
        say.append(f"access ends: {r['access_ends']}")
    if shown.get("renewal"):
        say.append(f"renewal: {shown['renewal']['said']}")
    if r["message"]:
        say.append(f"the developer is told: {r['message']}")
    say.append(f"rules revision {r['revision'] or '-'}")
    say.append("facts the rules used:")
    say += [f"  {name} = {step.text}" for name, step in explain.used(shown["trace"])]
    say.append("trace:")
    say += ["  " + line for line in explain.lines(explain.steps(shown["trace"]))]
    for n, step in enumerate((shown.get("standing") or {}).get("steps") or [], 1):
        state = "passed" if step["done"] else ("now: " + step["left"]) if step["current"] \
            else step["left"]
        say.append(f"step {n}: {step['step']}: {state}"
                   + (f"; approved by {', '.join(step['approved_by'])}"
                      if step["approved_by"] else "")
                   + (f" (overridden by {step['overridden_by']})"
                      if step["overridden_by"] else ""))
    if shown["claim"]:
        c = shown["claim"]
        say.append(f"claimed by {c['by']} ({c['via']}) at {c['claimed_at']}: {c['outcome']}")
    say.append("history:")
    say += ["  " + entry_line(entry) for entry in shown["history"]]
    for line in say:
        print(printable(line))

ENTRY_HEADER = (f"{'WHEN':<24}  {'EVENT':<12} {'REQUEST':<26} {'OUTCOME':<8} "
                f"{'DEVELOPER':<28} {'BY':<28} WHY")


def entry_line(entry: dict) -> str:
    """One log entry (or waiting or failed request) on a line: when, what, which request,
    the outcome, the developer's email, who decided (a person, or rule=ID) and why."""
    what = entry.get("outcome") or entry.get("status") or ""
    person = entry.get("decided_by") or entry.get("by")
    rule = entry.get("rule")
    by = person or (f"rule={rule}" if rule else "")
    tail = entry.get("reason") or entry.get("why") or entry.get("error") or ""
    if entry.get("step"):  # a person's approval of one step, or an override
        tail = f"[{entry['step']} via {entry.get('via') or '?'}] {tail}"
    when = entry.get("at") or entry.get("deadline") or ""
    return printable(f"{when:<24}  {entry.get('event') or entry.get('state') or '':<12} "
                     f"{entry.get('request_id') or entry.get('developer_id') or '':<26} "
                     f"{what:<8} {entry.get('developer_email') or '-':<28} {by:<28} "
                     f"{tail}").rstrip()


def add_commands(sub) -> None:
    """`decisions list`, `verify`, `export`, `show`."""
    dsub = group(sub, "decisions", "the decision log")
    command(dsub, "list", cmd_decisions_list, "latest entries",
            arg("--limit", type=count, default=20), arg("--json", action="store_true"),
            one_of(arg("--waiting", action="store_true", help="requests waiting (billing)"),
                   arg("--failed", action="store_true", help="jobs that failed for good")))
    command(dsub, "verify", cmd_decisions_verify, "check the log's hash chain",
            arg("--file", help="check an export (JSON lines) instead of Redis"))
    command(dsub, "export", cmd_decisions_export, "the log as JSON lines, oldest first, verified",
            arg("--output", default="-"),
            arg("--since", help="from this time on (RFC 3339, or a date; UTC)"),
            arg("--until", help="before this time (exclusive)"))
    command(dsub, "show", cmd_decisions_show, "one key request: who, what, why, its trace "
            "and history", arg("id"), arg("--json", action="store_true",
                                          help="its state and history as recorded"))
