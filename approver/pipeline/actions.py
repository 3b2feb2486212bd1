"""Deciding from a mail: the Approve and Deny links each recipient gets, and what using one
does. A link only opens a page (a mail scanner's fetch decides nothing); the page's form
decides through the same claim and job as the console (`via: email`).

A link is refused, saying why, and the refusal audited in the decision log, when it is
unknown, used, expired, for a request decided meanwhile, or for a person who may no longer
decide (or, with APPROVER_ACTION_LINK_SIGN_IN, not the person signed in).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from approver import state as st
from approver.pipeline import deciders, review, steps
from approver.state import actions

log = logging.getLogger(__name__)

VIA = "email"
PATH = "/console/act/"
PAST = {"approve": "approved", "deny": "denied"}


@dataclass(frozen=True)
class Refusal:
    """Why a link does nothing: an HTTP status, a title and a sentence for its holder."""

    status: int
    title: str
    text: str


def links(store: st.Store, settings, address: str, request_id: str, step: str = "",
          subject: str = "") -> dict:
    """The approve and deny URLs for one recipient's mail about a request in the inbox
    (a fresh token each call), for `subject` (else the address), bound to `step` when given
    (`step_of`); {} when the request left the inbox or there is no public URL."""
    since = store.redis.zscore(st.INBOX_KEY, request_id)
    if not settings.public_url or since is None:
        return {}
    token = actions.mint(store, subject or f"email:{address}", request_id, step, since,
                         settings.action_link_ttl)
    base = settings.public_url.rstrip("/") + PATH + token
    return {"approve_url": f"{base}?outcome=approve", "deny_url": f"{base}?outcome=deny",
            "links_expire": _when(datetime.now(UTC).timestamp() + settings.action_link_ttl)}


def step_of(state: dict, index: int) -> str:
    """What binds a link to one step of a request: the decision that set the steps, and the
    step's index. The link dies once the request is at another step."""
    return f"{state.get('approvals_id') or ''}:{index}"


def outside(found: dict | None) -> bool:
    """Whether a link is an outside approver's: an address bound to a step, no account
    behind it (no console sign-in is asked of them)."""
    return bool(found and found.get("step") and found["subject"].startswith("email:"))


def _holder(store: st.Store, settings, found: dict) -> tuple[steps.Person | None, str | None]:
    """Who a link decides as: the outside approver its step names (their address is their
    email, for four eyes), else the person its subject names (`deciders.person_of`)."""
    if outside(found):
        state = store.state(found["request_id"]) or {}
        now = steps.standing(store, found["request_id"], state)
        rows = now["steps"]
        current = rows[now["current"]] if now["current"] < len(rows) else {}
        if current.get("email") and steps.outsider(current["email"]) == found["subject"]:
            return steps.Person(found["subject"], (), current["email"]), None
    return deciders.person_of(found["subject"], store, settings)


def _step_gone(store: st.Store, found: dict) -> str | None:
    """Why a link bound to a step no longer decides it, if it does not."""
    if not found.get("step"):
        return None
    state = store.state(found["request_id"]) or {}
    now = steps.standing(store, found["request_id"], state)
    if step_of(state, now["current"]) != found["step"]:
        return "the step it was sent for has been decided"
    return None


def check(store: st.Store, settings, token: str, person: steps.Person | None = None,
          outcome: str = "approve") -> tuple[dict | None, Refusal | None]:
    """A link's record if it may still decide its request (for `person`, when a sign-in is
    required), else why not (not audited)."""
    found = actions.look(store, token) if token else None
    if found is None:
        return None, Refusal(404, "Unknown link", "This link is not one this service made, "
                             "or it was cut short. Open the request from the console.")
    if found.get("used_at"):
        return found, _used(found["used_at"], found.get("used_by", ""))
    why = _gone(store, found) or _step_gone(store, found)
    if why:
        return found, Refusal(410, "Already decided", f"This link no longer works: {why}.")
    if int(found["expires"]) < datetime.now(UTC).timestamp():
        return found, Refusal(410, "Link expired", "This link expired at "
                              f"{_when(found['expires'])}. Open the request from the console.")
    subject, refused = _holder(store, settings, found)
    if refused:
        return found, Refusal(403, "Not allowed", f"This link no longer works: {refused}.")
    if person and not deciders.same_person(found["subject"], person.name):
        return found, Refusal(403, "Not your link", "This link was sent to "
                              f"{found['subject'].partition(':')[2]}, and you are signed in "
                              f"as {person.name}.")
    refused = deciders.may_decide(person or subject, found["request_id"], store, settings,
                                  outcome)
    return found, Refusal(403, "Not allowed", f"{refused[:1].upper()}{refused[1:]}.") \
        if refused else None


def _used(at: str, by: str) -> Refusal:
    return Refusal(410, "Link already used", f"This link was used at {at}"
                   f"{f' by {by}' if by else ''}; each link works once.")


def _gone(store: st.Store, found: dict) -> str | None:
    """Why the request is no longer the one the link was made for, if it is not."""
    request_id = found["request_id"]
    state = store.state(request_id) or {}
    since = store.redis.zscore(st.INBOX_KEY, request_id)
    if state.get("state") not in st.INBOX_STATES or (
            since is None or repr(since) != found.get("since")):
        if state.get("state") == st.APPLIED:
            return (f"the request was {PAST.get(state.get('outcome'), 'decided')} by "
                    f"{state.get('decided_by') or state.get('rule') or 'a rule'}")
        return "the request is no longer awaiting a decision"
    return None


def refuse(store: st.Store, found: dict | None, refusal: Refusal, origin: str,
           person: steps.Person | None = None) -> Refusal:
    """Audit a refused link (never the token) and hand the refusal back. A token this
    service never made is logged, not audited: guesses cost nothing to send, and must not
    fill the decision log."""
    if found:
        store.log("link_refused", found["request_id"],
                  by=person.name if person else found["subject"], link_for=found["subject"],
                  via=VIA, why=refusal.text, **{"from": origin})
    log.info("action link refused for key request %s: %s",
             (found or {}).get("request_id") or "?", refusal.title)
    return refusal


def act(rt, token: str, outcome: str, reason: str, origin: str,
        person: steps.Person | None = None) -> tuple[dict, Refusal | None, bool]:
    """Use a link (checked again here, atomically once) and decide with it as the console
    does (`steps.act`: a claim queued for a worker, or an approval counted toward the
    current step); `person` is who is signed in, when sign-in is required. Returns the link,
    why it did nothing (refusals of the link are audited; a bad form, an unknown outcome or
    no reason to deny, is a 400 that leaves the link as it was), and whether the approval
    only counted toward a step."""
    known = outcome in ("approve", "deny")
    found, refusal = check(rt.store, rt.settings, token, person,
                           outcome if known else "approve")
    if refusal is not None:
        return found or {}, refuse(rt.store, found, refusal, origin, person), False
    if not known:
        return found, Refusal(400, "Choose a decision", "Approve or deny."), False
    try:
        reason = review.clean_reason(reason, required=outcome == "deny")
    except review.Refused as exc:
        return found, Refusal(400, "A reason is needed", str(exc).capitalize() + "."), False
    who = person or _holder(rt.store, rt.settings, found)[0]
    if outcome == "approve" and not reason and steps.overrides(
            rt.store, found["request_id"], who, rt.settings.admins_group):
        return found, Refusal(400, "A reason is needed", "A reason is required to override "
                              "a step that is not your group's."), False
    done, at, used_by = actions.use(rt.store, token, who.name)
    if done != actions.USED:  # another tab or a replay used it a moment ago
        again = _used(at, used_by) if done == actions.SPENT else Refusal(
            410, "Link no longer works", "This link no longer works.")
        return found, refuse(rt.store, found, again, origin, person), False
    request_id = found["request_id"]
    rt.store.log("link_used", request_id, by=who.name, link_for=found["subject"], via=VIA,
                 outcome=outcome, **{"from": origin})
    try:
        taken = steps.act(rt.store, request_id, outcome, reason, who, VIA, origin,
                          rt.settings.admins_group)
    except steps.NotYours as exc:
        return found, Refusal(403, "Not allowed", str(exc).capitalize() + "."), False
    except review.Refused as exc:
        return found, Refusal(409, "Not decided", str(exc).capitalize() + "."), False
    if taken is None:
        return found, None, True
    try:
        review.enqueue_claim(rt.queue, request_id, taken, rt.settings.retry_delays)
    except Exception:
        rt.store.release_claim(request_id, taken["claim_id"])
        raise
    return found, None, False


def _when(epoch) -> str:
    return datetime.fromtimestamp(float(epoch), UTC).strftime("%Y-%m-%d %H:%M UTC")
