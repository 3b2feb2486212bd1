"""`approver review`: the review inbox from the command line (list, show, approve, deny)."""

from __future__ import annotations

import argparse
import json
import sys

from approver import config
from approver.cli.decisions import print_request
from approver.cli.parsing import arg, command, group
from approver.errors import ApproverError
from approver.terminal import printable


def cmd_review_list(args) -> int:
    """What awaits a person: the review inbox (and waiting requests, marked so)."""
    from approver.pipeline import review, runtime

    rt = runtime.current()
    rows = review.items(rt.store, portal=review.portal_name(args.portal),
                        rule=args.rule, older_than=args.older_than, email=args.email)
    if args.rule and not rows:
        _known_rule(rt, args.rule)
    if args.json:
        print(json.dumps(rows, sort_keys=True))
        return 0
    if rows:
        print(f"{'REQUEST':<26} {'PORTAL':<7} {'KIND':<6} {'AGE':>7}  {'DEVELOPER':<32} "
              f"{'ASKED FOR':<20} WHY (RULE: REASON)")
    for row in rows:
        kind = "RENEW" if row.get("renewal") else "WAIT" if row["waiting"] else "REVIEW"
        print(printable(f"{row['id']:<26} {row['portal']:<7} {kind:<6} "
                        f"{review.age(row['age']):>7}  "
                        f"{row['developer_email'] or row['developer_id']:<32} "
                        f"{', '.join(row['policies']):<20} "
                        + (row["renewal"]["label"] if row.get("renewal")
                           else f"{row['rule']}: {row['reason']}")))
    if not rows:
        print("nothing awaits review", file=sys.stderr)
    return 0

def _known_rule(rt, rule: str) -> None:
    """Refuse a --rule that names no rule in force and nothing in the inbox."""
    from approver.pipeline import review

    ids = [r.id for r in rt.rules.current().rules]
    if rule not in ids and rule != "default" and not review.items(rt.store, rule=rule):
        raise ApproverError(f"no rule {rule!r} in the rules in force "
                            f"({rt.settings.rules_path}): {', '.join(ids)} or default")

def cmd_review_show(args) -> int:
    """One request as a person reviews it: its record, facts, trace and history."""
    from approver.pipeline import runtime, steps

    shown = steps.show(runtime.current().store, args.id)
    if shown is None:
        print(f"approver: no record of key request {args.id}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(shown, indent=2, sort_keys=True, default=str))
        return 0
    print_request(shown)
    return 0

def cmd_review_decide(args) -> int:
    """A person approves or denies a request in the review inbox, applied in Tyk now."""
    import getpass
    import socket

    from approver.pipeline import decide, jobs, review, runtime, steps

    rt = runtime.current()
    rt.notify_here = False  # a worker mails and notifies, with its own settings
    try:
        origin = f"{getpass.getuser()}@{socket.gethostname()}"
    except (KeyError, OSError):
        origin = socket.gethostname()
    try:
        person = _person(rt, args.id, review.clean_name(args.by))
        if _decided_renewal(rt, args, person, origin):
            return 0
        taken = steps.act(rt.store, args.id, args.outcome, args.reason, person, "cli", origin,
                          rt.settings.admins_group)
    except review.Refused as exc:
        print(printable(f"approver: {exc}"), file=sys.stderr)
        return 1
    if taken is None:
        print(f"key request {args.id}: the approval of {person.name} is recorded; it waits "
              "for its remaining steps (approver review show " + args.id + ")")
        return 0
    try:
        result = jobs.when_free(lambda: decide.decide_by_person(
            rt, args.id, taken["outcome"], taken["reason"], taken["by"], "cli",
            **review.audit_fields(taken)))
    except Exception as exc:
        # Nothing was decided: the claim goes, and the log says why beside "claimed".
        from approver.pipeline.decide.result import describe

        why = describe(exc)
        rt.store.release_claim(args.id, taken["claim_id"])
        rt.store.log("claim_dropped", args.id, claim_id=taken["claim_id"], by=taken["by"],
                     outcome=taken["outcome"], via="cli", why=why)
        raise
    rt.store.release_claim(args.id, taken["claim_id"])
    if result.state == "refused":
        print(printable(f"approver: key request {args.id}: {result.reason}"), file=sys.stderr)
        return 1
    print(f"key request {args.id} {decide.past(result.outcome)} by {taken['by']}"
          + (" (shadow mode: recorded, not applied)" if result.state == "shadowed" else
             " in Tyk"))
    return 0

def _decided_renewal(rt, args, person, origin: str) -> bool:
    """The request's open renewal, if it has one, decided by `person` (Refused as a claim
    is); False when none is open: a pending request's decision goes on."""
    from approver.pipeline import renewals
    from approver.state import renewals as kept

    renewal = kept.get(rt.redis, args.id)
    if not renewal or renewal.get("state") != kept.OPEN:
        return False
    renewals.decide(rt, args.id, renewal["renewal_id"], args.outcome, args.reason, person,
                    "cli", origin, rt.settings.admins_group)
    ends = (rt.store.state(args.id) or {}).get("expires_at") or "?"
    print(f"key request {args.id}: {kept.label(renewal)} "
          + (f"renewed by {person.name}, until {ends}" if args.outcome == "approve" else
             f"denied by {person.name}: the access ends then"))
    return True


def _person(rt, request_id: str, name: str):
    """Who `--by` names: a local console account (`NAME` or `local:NAME`), with its groups
    and email; a name with no account only for a request whose rule named no group."""
    from approver.pipeline import review, steps
    from approver.state import accounts

    account = name.removeprefix("local:")
    found = accounts.profile(rt.store, account)
    if found is not None:
        return steps.Person(accounts.person("local", account), tuple(found["groups"]),
                            found["email"])
    if (rt.store.state(request_id) or {}).get("approvals"):
        raise review.Refused(f"--by {name}: no console account of that name, and this "
                             "request's steps name groups (`approver admin add NAME --group "
                             "G` adds one)")
    return steps.Person(name)


def _age(text: str) -> int:
    try:
        return config._duration("--older-than", text) or 0
    except ApproverError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_commands(sub) -> None:
    """`review list`, `show`, `approve`, `deny`."""
    vsub = group(sub, "review", "the review inbox: what awaits a person")
    command(vsub, "list", cmd_review_list, "requests awaiting a person (waiting ones marked)",
            arg("--portal", choices=("classic", "new")),
            arg("--rule", help="only those this rule sent to review"),
            arg("--older-than", type=_age, metavar="AGE",
                help="only those waiting longer than this (90s, 30m, 2h, 3d)"),
            arg("--email", help="only developers whose email contains this"),
            arg("--json", action="store_true", help="one JSON array"))
    command(vsub, "show", cmd_review_show, "a request, its facts, trace and history",
            arg("id"), arg("--json", action="store_true"))
    for outcome in ("approve", "deny"):
        command(vsub, outcome, cmd_review_decide, f"{outcome} a request in the inbox, in Tyk now",
                arg("id"),
                arg("--reason", required=outcome == "deny", default="",
                    help="why (recorded; emailed to the developer if configured)"),
                arg("--by", required=True, metavar="NAME",
                    help="who decides: a console account, held to its groups"),
                outcome=outcome)
