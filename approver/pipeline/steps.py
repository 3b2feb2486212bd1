"""Requests with steps: who may decide the step a request is at, and moving it forward.

A `review` rule's `approvals:` ride on its decision record (`approval_fields`). A person's
approval counts toward the current step (`state.steps`); when the last step passes, the
approval takes the request's claim and goes the way every person's decision goes
(`review.enqueue_claim` → `decide.by_people`), so Tyk is called once. A deny by anyone who
may decide the current step ends the request denied, the same way. Without steps, anyone
signed in may decide, as before groups.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from approver import state as st
from approver.pipeline import review
from approver.rules.ruleset import steps_from
from approver.state import steps as progress_of


class NotYours(review.Refused):
    """This person may not decide this request (or its current step): 403, exit 1."""


@dataclass(frozen=True)
class Person:
    """Who acts: their name (`local:alice`), groups, and email (for the four-eyes check)."""

    name: str
    groups: tuple[str, ...] = ()
    email: str = ""


def outsider(address: str) -> str:
    """The name an outside approver (a step's `email:`, no account) decides as."""
    return f"email:{address.strip().lower()}"


def approval_fields(decision) -> dict:
    """What a rule's decision record keeps of its steps and deadline, with the id their
    progress is kept under (a request decided again starts afresh); empty for a decision
    without them (None: not a review), replacing any a request had before."""
    if decision is None or not (decision.approvals or decision.deadline):
        return {"approvals": [], "approval_deadline": None, "approvals_id": ""}
    return {"approvals": [s.to_dict() for s in decision.approvals],
            "approval_deadline": decision.deadline.to_dict() if decision.deadline else None,
            "approvals_id": uuid.uuid4().hex}


def standing(store: st.Store, request_id: str, state: dict) -> dict:
    """A request's steps as a person reads them: each step, who approved it, what is
    left; the index of the current one; and who approved any step."""
    steps = steps_from(state.get("approvals"))
    now = progress_of.progress(store, request_id, state.get("approvals_id") or "")
    rows = []
    for index, step in enumerate(steps):
        approved = now["approved"].get(index, [])
        done = index < now["current"]
        rows.append({
            "step": step.describe(), "group": step.group, "validator": step.validator,
            "email": step.email, "approved_by": approved,
            "overridden_by": now["overridden"].get(index, ""),
            "done": done, "current": index == now["current"],
            "left": "" if done else (f"{len(approved)} of {step.count} {step.group}"
                                     if step.group else step.describe())})
    return {"steps": rows, "current": now["current"], "people": now["people"],
            "escalated": now["escalated"], "expired": now["expired"],
            "escalate_to": (state.get("approval_deadline") or {}).get("escalate_to")}


def show(store: st.Store, request_id: str) -> dict | None:
    """`review.show`, with the request's steps as they stand (`standing`)."""
    shown = review.show(store, request_id)
    if shown is not None:
        shown["standing"] = standing(store, request_id, store.state(request_id) or {})
    return shown


def waiting_for(store: st.Store, rows: list[dict], person: Person,
                admins: str | None = None) -> list[dict]:
    """The inbox rows whose current step names one of `person`'s groups (or that they may
    decide as the escalation group), each with its standing; requests without steps are
    everyone's, so they are not "waiting for me"."""
    mine = []
    for row in rows:
        if not row.get("approvals"):
            continue
        now = standing(store, row["id"], row)
        current = now["steps"][min(now["current"], len(now["steps"]) - 1)]
        groups = {current["group"]} | ({now["escalate_to"]} if now["escalated"] else set())
        if groups & set(person.groups) and may_decide(
                person, {**row, "standing": now}, admins) is None:
            mine.append(row | {"standing": now})
    return mine


def may_decide(person: Person, request: dict, admins: str | None = None,
               outcome: str = "approve") -> str | None:
    """Why `person` may not decide the request's current step, or None if they may.

    `request` is the request's record with its `standing` under "standing". The admins'
    group may decide any step (an approval of a step not theirs is an override). A
    validator's or an outside approver's step left to people is the admins' (anyone's, if
    no admins' group is set); an outside approver decides their own step only.
    """
    email = person.email.strip().lower()
    if email and email == str(request.get("developer_email") or "").strip().lower():
        return "nobody decides a request of their own email address"
    now = request.get("standing") or {}
    rows = now.get("steps") or []
    if not rows:
        return None  # no rule named a group: anyone signed in
    if outcome == "approve" and person.name in now.get("people", []) and \
            not (admins and admins in person.groups):
        return f"{person.name} already approved a step of this request (four eyes)"
    if admins and admins in person.groups:
        return None
    if now.get("expired"):  # on_expire: review dropped the steps: the admins decide
        return None if not admins else f"its deadline passed: only {admins} decides it now"
    current = rows[min(now.get("current", 0), len(rows) - 1)]
    if current.get("email") and outsider(current["email"]) == person.name:
        return None  # the outside approver the step names, by the link mailed to them
    allowed = {current["group"]} if current["group"] else set() if admins else None
    if allowed is None:
        return None
    if now.get("escalated") and now.get("escalate_to"):
        allowed.add(now["escalate_to"])
    if allowed & set(person.groups):
        return None
    return (f"the current step is {current['step']}; {person.name} is not in "
            + (" or ".join(sorted(allowed)) or "the admins' group"))


def refusal(store: st.Store, request_id: str, person: Person, admins: str | None = None,
            outcome: str = "approve") -> str | None:
    """Why `person` may not `outcome` the request now (its record and steps read from
    Redis), or None if they may: the one check every channel in (console, command line,
    a mail's link, a chat button) applies before it acts."""
    state = store.state(request_id) or {}
    return may_decide(person, {**state, "standing": standing(store, request_id, state)},
                      admins, outcome)


def _overrides(person: Person, row: dict, admins: str | None) -> bool:
    return bool(admins and admins in person.groups and row["group"] not in person.groups)


def overrides(store: st.Store, request_id: str, person: Person, admins: str | None) -> bool:
    """Whether `person`'s approval of the request's current step would override it (a
    member of the admins' group, not of the step's): it then needs a reason."""
    now = standing(store, request_id, store.state(request_id) or {})
    rows = now["steps"]
    return bool(rows) and _overrides(person, rows[min(now["current"], len(rows) - 1)], admins)


def act(store: st.Store, request_id: str, outcome: str, reason: str, person: Person,
        via: str, origin: str, admins: str | None = None) -> dict | None:
    """A person approves or denies a request: the claim to carry out when it is decided
    (approve: once its last step passed; deny: at once), else None when their approval
    only counted toward a step. NotYours or Refused (logged) when they may not."""
    if outcome not in ("approve", "deny"):
        raise review.Refused(f"unknown decision {outcome!r}: approve or deny")
    reason = review.clean_reason(reason, required=outcome == "deny")
    state = store.state(request_id) or {}
    request = {**state, "standing": standing(store, request_id, state)}
    why = may_decide(person, request, admins, outcome)
    audit = {"outcome": outcome, "reason": reason, "by": person.name, "via": via,
             "from": origin}
    if why:
        store.log("claim_refused", request_id, why=why, **audit)
        raise NotYours(f"key request {request_id}: {why}")
    now = request["standing"]
    if outcome == "deny" or not now["steps"]:
        return review.claim(store, request_id, outcome, reason, person.name, via, origin)
    step = now["current"]
    row = now["steps"][min(step, len(now["steps"]) - 1)]
    override = _overrides(person, row, admins)
    if override and not reason:
        raise review.Refused("a reason is required to override a step")
    needed = next((s.count for i, s in enumerate(steps_from(state.get("approvals")))
                   if i == step), 1)
    taken = {"claim_id": uuid.uuid4().hex, "outcome": "approve", "reason": reason,
             "by": person.name, "via": via, "from": origin, "claimed_at": st.now_iso()}
    done, detail = progress_of.approve(store, request_id, state.get("approvals_id") or "",
                                       step, person.name, needed, len(now["steps"]),
                                       override, taken)
    event = "step_overridden" if override else "step_approved"
    if done in (progress_of.COUNTED, progress_of.PASSED, progress_of.COMPLETE):
        store.log(event, request_id, step=row["step"], step_index=step, **audit)
    if done == progress_of.COMPLETE:
        store.log("claimed", request_id, claim_id=taken["claim_id"], **audit)
        return taken
    if done in (progress_of.COUNTED, progress_of.PASSED):
        return None
    why = {progress_of.ALREADY: f"{person.name} already approved a step of this request "
                                "(four eyes)",
           progress_of.MOVED: "its steps moved on meanwhile: look again",
           progress_of.CLAIMED: "someone is already deciding it",
           }.get(done, f"it is not awaiting review (state {detail or 'none'})")
    store.log("claim_refused", request_id, why=why, **audit)
    raise review.Refused(f"key request {request_id}: {why}")
