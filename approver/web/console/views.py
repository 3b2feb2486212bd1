"""The console's pages: the inbox, a request, people's decisions on them, the decision log."""

from __future__ import annotations

import json
import logging
import re

from flask import Blueprint, current_app, flash, g, redirect, request, url_for
from redis.exceptions import RedisError, ResponseError

from approver import config
from approver.errors import ConfigError
from approver.pipeline import enqueue, notify, renewals, review
from approver.pipeline import steps as approval_steps
from approver.rules import explain
from approver.web.console.auth import origin, require_login
from approver.web.console.pages import message, render

log = logging.getLogger(__name__)

bp = Blueprint("console", __name__, url_prefix="/console")
bp.before_request(require_login)

BULK_LIMIT = 100
# The decision log view shows decisions, or (a filter of their own) console sign-ins.
KINDS = ("decisions", "sign-ins")
SIGN_IN_PREFIX = "console_"
LOG_PAGE = 50
_ENTRY_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
_WORD = re.compile(r"[a-z_]{1,40}")
AGES = (("", "any age"), ("1h", "over 1 hour"), ("4h", "over 4 hours"),
        ("1d", "over 1 day"), ("3d", "over 3 days"))


@bp.app_template_filter("age")
def _age(seconds: float) -> str:
    return review.age(seconds)


@bp.app_template_filter("show")
def _show(value) -> str:
    """A fact's value as text (autoescaped where shown)."""
    return value if isinstance(value, str) else json.dumps(value, default=str)


@bp.errorhandler(RedisError)
def _redis_down(exc):
    log.warning("console: Redis unavailable: %s", type(exc).__name__)
    return message(503, "Unavailable", "The service's store is unavailable; try again "
                   "shortly.", headers={"Retry-After": "5"})


def _rt():
    return current_app.extensions["approver"]


@bp.get("/")
def inbox():
    """What awaits a person, with filters; several may be decided at once."""
    return _inbox_page()


def _inbox_page(status: int = 200, error: str | None = None, reason: str = ""):
    args = request.args
    try:
        portal = review.portal_name(args.get("portal") or None)
        older = config._duration("age", args.get("age") or None)
    except (review.Refused, ConfigError) as exc:
        return message(400, "Bad filter", str(exc))
    everything = review.items(_rt().store)
    query = args.get("q", "").strip()[:254]
    rule = args.get("rule", "").strip()[:100]
    rows = review.matching(everything, portal=portal, rule=rule or None, older_than=older,
                           email=query)
    mine = approval_steps.waiting_for(_rt().store, rows, _person(), _rt().settings.admins_group)
    show_mine = args.get("show") == "mine"
    rules = sorted({r["rule"] for r in everything})
    return render("inbox.html", status, title="Review inbox", rows=mine if show_mine else rows,
                  mine=len(mine), show_mine=show_mine, total=len(everything),
                  rules=rules, ages=AGES, filters={"portal": args.get("portal", ""),
                                                   "rule": rule, "age": args.get("age", ""),
                                                   "q": query},
                  error=error, reason=reason, reason_limit=review.REASON_LIMIT)


@bp.get("/requests/<ref>")
def request_page(ref: str):
    """One request as a person reviews it."""
    return _request_page(ref)


def _request_page(ref: str, status: int = 200, error: str | None = None, reason: str = ""):
    if not enqueue.ID_PATTERN.match(ref):
        return message(404, "Not found", "That is not a key request id.")
    shown = approval_steps.show(_rt().store, ref)
    if shown is None:
        return message(404, "Not found", f"This service has no record of key request {ref}.")
    claim = shown["claim"]
    pending = claim is not None and not claim.get("result") and shown["in_inbox"]
    r = shown["request"]
    dashboard = _rt().settings.dashboard_url
    links = {"request": notify.request_link(dashboard, ref),
             "developer": notify.developer_link(dashboard, ref, r["developer_id"])}
    return render("request.html", status, title=f"Key request {ref}", shown=shown, r=r,
                  standing=shown["standing"],
                  claim=claim, links=links,
                  # Reloads the request's own page: this one may answer a form's POST.
                  refresh=(f"2; url={url_for('console.request_page', ref=ref)}"
                           if pending else None),
                  steps=explain.steps(shown["trace"]), used=explain.used(shown["trace"]),
                  error=error, reason=reason, reason_limit=review.REASON_LIMIT)


@bp.post("/requests/<ref>/decide")
def decide(ref: str):
    """Approve or deny one request: claimed now, applied by a worker, shown when done."""
    if not enqueue.ID_PATTERN.match(ref):
        return message(404, "Not found", "That is not a key request id.")
    outcome = request.form.get("outcome", "")
    reason = request.form.get("reason", "")
    try:
        counted = _claim(ref, outcome, reason)
    except approval_steps.NotYours as exc:
        return _request_page(ref, 403, error=str(exc), reason=reason[:review.REASON_LIMIT])
    except review.Refused as exc:
        status = 400 if _bad_input(outcome, reason) else 409
        return _request_page(ref, status, error=str(exc), reason=reason[:review.REASON_LIMIT])
    if counted:
        flash("Your approval is recorded; the request waits for its remaining steps.", "ok")
    return redirect(url_for("console.request_page", ref=ref), 303)


@bp.post("/requests/<ref>/renewal")
def decide_renewal(ref: str):
    """Approve or deny the renewal of a grant's access (no call to Tyk: decided now)."""
    if not enqueue.ID_PATTERN.match(ref):
        return message(404, "Not found", "That is not a key request id.")
    outcome, reason = request.form.get("outcome", ""), request.form.get("reason", "")
    rt = _rt()
    try:
        renewals.decide(rt, ref, request.form.get("renewal_id", ""), outcome, reason,
                        _person(), "console", origin(), rt.settings.admins_group)
    except approval_steps.NotYours as exc:
        return _request_page(ref, 403, error=str(exc), reason=reason[:review.REASON_LIMIT])
    except review.Refused as exc:
        status = 400 if _bad_input(outcome, reason) else 409
        return _request_page(ref, status, error=str(exc), reason=reason[:review.REASON_LIMIT])
    flash("The renewal is approved: access runs a period more." if outcome == "approve"
          else "The renewal is denied: access ends as planned.", "ok")
    return redirect(url_for("console.request_page", ref=ref), 303)


@bp.post("/decide")
def decide_many():
    """Approve or deny several requests at once, with one reason."""
    ids = request.form.getlist("ids")
    outcome, reason = request.form.get("outcome", ""), request.form.get("reason", "")
    if not ids:
        return _inbox_page(400, "Choose at least one request.", reason)
    if len(ids) > BULK_LIMIT:
        return _inbox_page(400, f"At most {BULK_LIMIT} requests at once.", reason)
    if _bad_input(outcome, reason):
        try:
            review.clean_reason(reason, required=outcome == "deny")
            error = f"Unknown decision {outcome[:20]!r}."
        except review.Refused as exc:
            error = str(exc).capitalize() + "."
        return _inbox_page(400, error, reason[:review.REASON_LIMIT])
    claimed, counted, refused, not_yours = [], [], [], 0
    for ref in dict.fromkeys(ids):
        if not enqueue.ID_PATTERN.match(ref):
            refused.append(f"{ref[:30]!r} is not a key request id")
            continue
        try:
            (counted if _claim(ref, outcome, reason) else claimed).append(ref)
        except review.Refused as exc:
            not_yours += isinstance(exc, approval_steps.NotYours)
            refused.append(str(exc))
    if not claimed and not counted:
        return _inbox_page(403 if not_yours == len(refused) else 409,
                           "Nothing was decided: " + "; ".join(refused))
    verb = {"approve": "Approving", "deny": "Denying"}[outcome]
    if claimed:
        flash(f"{verb} {len(claimed)} request(s); the list updates as each is applied.", "ok")
    if counted:
        flash(f"Your approval is recorded on {len(counted)} request(s) that wait for more "
              "steps.", "ok")
    for why in refused:
        flash(f"Not decided: {why}", "error")
    return redirect(url_for("console.inbox"), 303)


def _bad_input(outcome: str, reason: str) -> bool:
    """Whether the form itself is wrong (400), rather than the request taken (409)."""
    if outcome not in ("approve", "deny"):
        return True
    try:
        review.clean_reason(reason, required=outcome == "deny")
    except review.Refused:
        return True
    return False


def _person() -> approval_steps.Person:
    user = g.console_user
    return approval_steps.Person(user["name"], tuple(user.get("groups") or ()),
                                 user.get("email") or "")


def _claim(ref: str, outcome: str, reason: str) -> bool:
    """Decide (or count an approval toward a step): True if it only counted."""
    rt = _rt()
    taken = approval_steps.act(rt.store, ref, outcome, reason, _person(), "console",
                               origin(), rt.settings.admins_group)
    if taken is None:
        return True
    try:
        review.enqueue_claim(rt.queue, ref, taken, rt.settings.retry_delays)
    except RedisError:
        rt.store.release_claim(ref, taken["claim_id"])
        raise
    return False


@bp.get("/log")
def decision_log():
    """The decision log, newest first, with filters."""
    args = request.args
    event, outcome = args.get("event", "").strip(), args.get("outcome", "").strip()
    ref, by = args.get("request", "").strip(), args.get("by", "").strip()[:254]
    before = args.get("before", "").strip()
    kind = args.get("kind", "decisions").strip()
    if kind not in KINDS:
        return message(400, "Bad filter", f"Show decisions or sign-ins, not {kind[:20]!r}.")
    problems = [name for name, value, pattern in (
        ("event", event, _WORD), ("outcome", outcome, _WORD),
        ("request", ref, enqueue.ID_PATTERN), ("before", before, _ENTRY_ID)) if value and
        not pattern.fullmatch(value)]
    if problems:
        return message(400, "Bad filter", f"Not a valid {', '.join(problems)}.")

    def wanted(entry: dict) -> bool:
        signin = str(entry.get("event") or "").startswith(SIGN_IN_PREFIX)
        return ((signin == (kind == "sign-ins"))
                and (not event or entry.get("event") == event)
                and (not outcome or entry.get("outcome") == outcome)
                and (not by or by in (entry.get("decided_by"), entry.get("by"))))

    try:
        entries = _rt().store.entries(LOG_PAGE, request_id=ref or None, match=wanted,
                                      before=before or "+")
    except ResponseError:  # an id of the right form Redis still refuses (0-0, above 2^64)
        return message(400, "Bad filter", "Not a valid before.")
    older = entries[-1]["id"] if len(entries) == LOG_PAGE else None
    return render("log.html", title="Decision log", entries=entries, older=older,
                  filters={"event": event, "outcome": outcome, "request": ref, "by": by,
                           "kind": kind}, kinds=KINDS)
