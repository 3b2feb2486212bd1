"""The review inbox: requests left for a person, and people's claims to decide them.

A request enters the inbox when it is decided `review` (or `wait`, shown marked so) and
leaves it with whatever decides it next (`state.records` keeps the index with the state).
A person's decision starts with a claim, taken atomically in Redis (`state.claims`): of two
admins deciding the same request, one wins and the other is told at once. The claim is then
carried out by `decide.decide_by_person`, in a worker (the console) or inline (the command
line).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import UTC, datetime

from rq import Queue, Retry

from approver import state as st
from approver.errors import ApproverError
from approver.state import grants, renewals

REASON_LIMIT = 500
NAME_PATTERN = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$")
# The job's dotted path, kept in approver/jobs.py: queued jobs and older workers name it.
CLAIM_JOB = "approver.jobs.decide_claimed"
PORTALS = {"classic": "classic", "new": "portal", "portal": "portal"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


class Refused(ApproverError):
    """A person's action that cannot be carried out; the message says why."""


def describe(context) -> dict:
    """What a person needs to see of a request beyond its facts: who (name, company, the
    sign-up fields), for what (the policy or plan and the APIs it opens), and what the
    developer holds already (the policies of each key, never a key). Developer-controlled
    text: stored as given, cut to size, escaped where shown."""
    developer = context.developer or context.request.get("portal_developer") or {}
    developer = developer if isinstance(developer, dict) else {}
    signed_up = _texts(developer.get("fields"))
    names = {pid: str((p or {}).get("name") or pid)[:100] for pid, p in context.policies.items()}
    keys = developer.get("keys") if isinstance(developer.get("keys"), dict) else {}
    return {
        "developer_email": str(developer.get("email") or "")[:254],
        "developer_name": _pick(developer, signed_up, "name", "full name", "full_name"),
        "developer_company": _pick(developer, signed_up, "company", "organisation",
                                   "organization", "company name"),
        "developer_fields": signed_up,
        "developer_keys": [[names.get(str(p), str(p)[:100]) for p in policies][:10]
                           for policies in list(keys.values())[:20]
                           if isinstance(policies, list)],
        "policy_names": list(names.values()),
        "api_names": _api_names(context),
        "request_fields": _texts(context.request.get("fields")),
    }


def _texts(fields) -> dict[str, str]:
    return {str(k)[:100]: str(v)[:500] for k, v in list(fields.items())[:30]} if isinstance(
        fields, dict) else {}


def _pick(developer: dict, fields: dict[str, str], *names: str) -> str:
    """The first of `names` the developer record or its sign-up fields have (any case)."""
    lowered = {k.lower(): v for k, v in fields.items()}
    for name in names:
        value = developer.get(name) or lowered.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()[:200]
    return ""


def _api_names(context) -> list[str]:
    """The APIs a request opens: those its policies grant, else its catalogue entries'
    names (a new portal's products are named as the policies themselves)."""
    found = []
    for policy in context.policies.values():
        rights = (policy or {}).get("access_rights")
        found += [r.get("apiname") or r.get("api_name") for r in
                  (rights.values() if isinstance(rights, dict) else []) if isinstance(r, dict)]
    if not found:
        found = [e.get("name") for e in context.request.get("catalogues") or []
                 if isinstance(e, dict)]
    return list(dict.fromkeys(str(n)[:100] for n in found if n))[:20]


def clean_reason(text: str | None, required: bool) -> str:
    """A reason as recorded: one line, no control characters; Refused if missing or long."""
    reason = _CONTROL.sub(" ", text or "").strip()
    if required and not reason:
        raise Refused("a reason is required to deny a request")
    if len(reason) > REASON_LIMIT:
        raise Refused(f"the reason is {len(reason)} characters long; "
                      f"at most {REASON_LIMIT} are kept")
    return reason


def clean_name(name: str | None) -> str:
    """Who decides, as recorded: 1 to 64 printable characters."""
    name = (name or "").strip()
    if not NAME_PATTERN.match(name):
        raise Refused("a name of 1 to 64 printable characters is required (--by)")
    return name


def portal_name(text: str | None) -> str | None:
    """The recorded portal name for `classic`, `new` (or `portal`); None for any."""
    if not text:
        return None
    if text not in PORTALS:
        raise Refused(f"unknown portal {text!r}: classic or new")
    return PORTALS[text]


# -- reading the inbox ---------------------------------------------------------------------
def items(store: st.Store, *, portal: str | None = None, rule: str | None = None,
          older_than: float | None = None, email: str | None = None,
          now: float | None = None) -> list[dict]:
    """What awaits a person, oldest first, filtered by portal, rule, age and email text."""
    now = time.time() if now is None else now
    entered = store.inbox()
    ids = [request_id for request_id, _ in entered]
    rows = []
    for (request_id, since), state, claim in zip(entered, store.records(ids),
                                                  store.claims_of(ids), strict=True):
        if state and state["state"] in st.INBOX_STATES:  # else it left between the reads
            rows.append(summary(request_id, state, since, now) | {"claim": claim})
    rows += renewal_rows(store, now)
    return matching(rows, portal=portal, rule=rule, older_than=older_than, email=email)


def renewal_rows(store: st.Store, now: float) -> list[dict]:
    """The grants whose renewal awaits a person (`renew: review`), as the inbox lists them:
    the approved request's summary, marked a renewal (`state` "renewal")."""
    opened = renewals.opened(store.redis)
    refs = [r for r, _ in opened]
    kept = zip(opened, store.records(refs), map(renewals.shown, renewals.get_many(
        store.redis, refs)), strict=True)
    return [summary(ref, state, since, now) | {"state": "renewal", "renewal": renewal,
                                                "claim": None}
            for (ref, since), state, renewal in kept
            if state and renewal and renewal["open"]]  # else decided between the reads


def matching(rows: list[dict], *, portal: str | None = None, rule: str | None = None,
             older_than: float | None = None, email: str | None = None) -> list[dict]:
    """The inbox rows of one portal, sent by one rule, older than an age, whose developer's
    email contains some text (each filter only if given)."""
    email = (email or "").strip().lower()
    return [row for row in rows
            if (not portal or row["portal"] == portal) and (not rule or row["rule"] == rule)
            and (older_than is None or row["age"] >= older_than)
            and (not email or email in row["developer_email"].lower())]


def summary(request_id: str, state: dict, since: float | None, now: float) -> dict:
    """One request as the inbox lists it."""
    return {
        "id": request_id,
        "portal": state.get("portal") or "classic",
        "state": state["state"],
        "waiting": state["state"] == st.WAITING,
        "developer_id": state.get("developer_id") or "",
        "developer_email": state.get("developer_email") or "",
        "developer_name": state.get("developer_name") or "",
        "policies": state.get("policy_names") or state.get("policies") or [],
        "rule": state.get("rule") or "default",
        "reason": state.get("reason") or "",
        "decided_at": state.get("decided_at") or "",
        "deadline": _iso(state.get("deadline")) if state.get("deadline") else "",
        "approvals": state.get("approvals") or [],
        "approvals_id": state.get("approvals_id") or "",
        "approval_deadline": state.get("approval_deadline") or None,
        "access_ends": grants.ends_text(state, now),
        "entered_at": _iso(since) if since else "",
        "age": max(0.0, now - since) if since else 0.0,
    }


def show(store: st.Store, request_id: str, history: int = 50) -> dict | None:
    """A request as a person reviews it: its record, facts, trace, log and claim, and the
    developer's other requests; None if the service has no record of it."""
    state = store.state(request_id)
    if state is None:
        return None
    since = store.redis.zscore(st.INBOX_KEY, request_id)
    developer = state.get("developer_id")
    others = [r for r in store.developer_requests(developer) if r != request_id] \
        if developer else []
    earlier = [summary(r, s, None, time.time()) | {"state": s["state"],
                                                   "outcome": s.get("outcome") or "",
                                                   "decided_by": s.get("decided_by") or ""}
               for r, s in zip(others, store.records(others), strict=True) if s]
    return {
        "request": summary(request_id, state, since, time.time()) | {
            "outcome": state.get("outcome") or "", "decided_by": state.get("decided_by") or "",
            "fields": state.get("request_fields") or {}, "revision": state.get("revision"),
            "company": state.get("developer_company") or "",
            "signed_up": state.get("developer_fields") or {},
            "held": state.get("developer_keys") or [],
            "apis": state.get("api_names") or [],
            # Who sent it to review and why, kept once a person has decided it.
            "review_rule": state.get("review_rule") or "",
            "review_reason": state.get("review_reason") or "",
            "message": state.get("message") or ""},
        "in_inbox": state["state"] in st.INBOX_STATES,
        "renewal": renewals.shown(renewals.get(store.redis, request_id)),
        "facts": state.get("facts") or {},
        "trace": state.get("trace") or [],
        "claim": store.claim_of(request_id),
        "history": list(reversed(store.entries(history, request_id=request_id))),
        "earlier": earlier,
    }


def age(seconds: float) -> str:
    """A duration as a person reads it: 45s, 12m, 3h 5m, 2d 4h."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if hours < 1:
        return f"{minutes}m"
    if days < 1:
        return f"{hours}h {minutes % 60}m"
    return f"{days}d {hours % 24}h"


def _iso(epoch) -> str:
    try:
        return datetime.fromtimestamp(float(epoch), UTC).isoformat(
            timespec="seconds").replace("+00:00", "Z")
    except (TypeError, ValueError, OverflowError):
        return ""


# -- claims --------------------------------------------------------------------------------
def claim(store: st.Store, request_id: str, outcome: str, reason: str, by: str, via: str,
          origin: str) -> dict:
    """Take the right to decide a request in the inbox; Refused if another holds it or it
    is no longer there. Logged (who, when, from where) either way."""
    if outcome not in ("approve", "deny"):
        raise Refused(f"unknown decision {outcome!r}: approve or deny")
    reason = clean_reason(reason, required=outcome == "deny")
    taken = {"claim_id": uuid.uuid4().hex, "outcome": outcome, "reason": reason, "by": by,
             "via": via, "from": origin, "claimed_at": st.now_iso()}
    done, detail = store.take_claim(request_id, taken)
    audit = {"outcome": outcome, "reason": reason, "by": by, "via": via, "from": origin}
    if done == 1:
        store.log("claimed", request_id, claim_id=taken["claim_id"], **audit)
        return taken
    if done == 2:
        other = json.loads(detail)
        why = (f"{other['by']} is already deciding it ({other['outcome']}, "
               f"since {other['claimed_at']})")
    elif (renewal := renewals.shown(renewals.get(store.redis, request_id))) and \
            renewal["open"]:
        why = (f"it awaits a {renewal['label']}: decide the renewal on its page "
               "(or with `approver review approve|deny`)")
    elif detail:
        why = _no_longer(store.state(request_id) or {})
    else:
        why = "the service has no record of this key request"
    store.log("claim_refused", request_id, why=why, **audit)
    raise Refused(f"key request {request_id}: {why}")


def _no_longer(state: dict) -> str:
    by = state.get("decided_by") or state.get("rule") or "default"
    outcome = {"approve": "approved", "deny": "denied"}.get(state.get("outcome") or "")
    if state.get("state") == st.APPLIED and outcome:
        return f"it is no longer pending: {outcome} by {by}"
    if state.get("state") == st.SKIPPED:
        return f"it is no longer pending: {state.get('reason') or 'gone from Tyk'}"
    if outcome:
        return f"it is no longer pending: being {outcome} by {by}"
    return f"it is not awaiting review (state {state.get('state')})"


def enqueue_claim(queue: Queue, request_id: str, taken: dict, retry_delays) -> None:
    """Queue the job that carries a claim out (the web tier never calls the Dashboard).

    The job carries the claim itself: a job that runs late, after its claim lapsed, still
    decides (or is refused, if someone else decided first)."""
    queue.enqueue(
        CLAIM_JOB, request_id, taken, job_id=f"claim-{taken['claim_id']}",
        retry=Retry(max=len(retry_delays), interval=list(retry_delays))
        if retry_delays else None,
        job_timeout=90, result_ttl=0, failure_ttl=30 * 86400,
        description=f"a person's decision on key request {request_id}")


def audit_fields(taken: dict) -> dict:
    """The claim's audit fields, as the decision record keeps them."""
    return {"claim_id": taken["claim_id"], "claimed_at": taken["claimed_at"],
            "decided_from": taken["from"]}
