"""The redirect-on-key-request hand-off and the page that follows its decision.

Tyk gives no proof that the browser holding a key request id is its developer's, so these
pages tell a visitor only what the developer needs to go on: where the request stands and
the decision's message for the developer (a rule's `message`, a person's reason, or the
outcome's plain default), never a rule, a fact, a rule's internal reason or who asked.
No request waits for a decision: an undecided one gets a page that reloads itself (a meta
refresh: no script runs under the CSP).
"""

from __future__ import annotations

import json
import re
import secrets
import time
from functools import partial
from urllib.parse import urlencode

from flask import Blueprint, current_app, redirect, request, url_for

from approver import signing
from approver import state as st
from approver.pipeline import enqueue
from approver.rules import developer_message
from approver.web import limits
from approver.web.pages import page

bp = Blueprint("handoff", __name__)

# Tyk adds the key request id to the hand-off, under a name it does not document
# (Tyk CONTRACT §2.2): accept each plausible one, from the query or a form.
ID_NAMES = ("key_request_id", "id", "request_id", "key_request")
# A classic-portal key request id is a MongoDB ObjectId; the Dashboard answers anything
# else with a 400, so nothing else is queued.
OBJECT_ID = re.compile(r"[0-9a-f]{24}")
# The page of an undecided request reloads every POLL seconds through a status link that
# lives STATUS_TTL seconds, and stops asking after POLL_FOR seconds.
POLL = 2
POLL_FOR = 120
STATUS_TTL = 600
CHECKOUT_TTL = 3600
CHECKOUT_PREFIX = st.PREFIX + "checkout:"


def _runtime():
    return current_app.extensions["approver"]


def _request_id() -> str | None:
    for name in ID_NAMES:
        value = request.values.get(name)
        if value:
            return value
    return None


@bp.route("/handoff", methods=["GET", "POST"])
def handoff():
    """A developer's browser arrives from the portal with a key request id."""
    rt = _runtime()
    if not limits.allow("handoff", rt.settings.handoff_limit):
        html, status, headers = page(429, "Too many requests",
                                     "Too many key requests from your address.",
                                     advice="Wait a minute, then start again from the portal.")
        return html, status, {**headers, "Retry-After": str(limits.WINDOW)}
    request_id = _request_id()
    if not request_id:
        return page(400, "No key request", "This link does not name a key request.",
                    advice="Start again from the developer portal.")
    if not OBJECT_ID.fullmatch(request_id):
        return _unknown()
    state = rt.store.state(request_id)
    if not state or state["state"] not in st.FINAL_STATES | st.INBOX_STATES:
        # The worker re-reads the request from the Dashboard (the web tier never calls it).
        enqueue.decision(rt.queue, request_id, "handoff", rt.settings.retry_delays)
    return _answer(request_id, state, _status_token(request_id))


@bp.get("/status/<token>")
def status(token: str):
    """Where a key request stands, for the page that follows a hand-off (signed link)."""
    try:
        payload = signing.verify(_runtime().settings.secret_key, token, "status")
    except signing.BadToken:
        return page(404, "Link not valid", "This link is not valid or has expired.",
                    advice="Start again from the developer portal.")
    request_id = str(payload.get("kr", ""))
    asked_for = STATUS_TTL - (payload["exp"] - time.time())
    return _answer(request_id, _runtime().store.state(request_id), token,
                   polling=asked_for < POLL_FOR)


def _status_token(request_id: str) -> str:
    return signing.sign(_runtime().settings.secret_key, {"kr": request_id}, STATUS_TTL,
                        "status")


def _status_url(token: str) -> str:
    base = _runtime().settings.public_url
    path = url_for("handoff.status", token=token)
    return f"{base}{path}" if base else url_for("handoff.status", token=token, _external=True)


def _unknown():
    return page(404, "Key request not found",
                "We could not find this key request in the developer portal.",
                advice="It may have been withdrawn. Start again from the developer portal.")


def _answer(request_id: str, state: dict | None, token: str, polling: bool = True):
    name = (state or {}).get("state")
    outcome = (state or {}).get("outcome")
    if name in (st.APPLIED, st.IN_REVIEW, st.WAITING) and outcome:
        say = partial(page, note=developer_message(outcome, (state or {}).get("message")))
    else:
        say = page
    if name == st.SKIPPED and "no longer exists" in (state.get("reason") or ""):
        return _unknown()
    if name == st.SKIPPED:
        return say(200, "Already approved", "This key request was already approved.",
                   advice="Your key is in the developer portal.", request_id=request_id)
    if name == st.APPLIED and outcome == "approve":
        return say(200, "Approved", "Your key request is approved.",
                   advice="Your key is in the developer portal (and on its way by email).",
                   request_id=request_id)
    if name == st.APPLIED and outcome == "deny":
        return say(200, "Not approved", "Your key request was not approved.",
                   advice="If you think this is a mistake, contact the API's owners.",
                   request_id=request_id)
    if name in (st.APPLIED, st.SHADOWED, st.IN_REVIEW):
        return say(200, "Waiting for review", "A person will look at your key request.",
                   advice="You will hear from the portal once it is decided.",
                   request_id=request_id)
    if name == st.WAITING:
        checkout = _runtime().settings.checkout_url
        if checkout and (state.get("wait") or {}).get("for") == "billing":
            return _to_checkout(checkout, request_id, state.get("developer_id") or "")
        return say(200, "Waiting for payment", "Your key request waits for your subscription.",
                   advice="It is approved as soon as billing confirms it.",
                   request_id=request_id)
    if not polling:
        return say(202, "Still being processed", "Your key request is still being processed.",
                   advice="You will hear from the portal once it is decided.",
                   request_id=request_id)
    # Not decided yet (or being retried): the page asks again by itself, under the CSP.
    url = _status_url(token)
    return say(202, "Deciding", "Your key request is being decided.",
                advice="This page updates itself in a moment.", request_id=request_id,
                refresh=f"{POLL}; url={url}", status_url=url)


def _to_checkout(checkout: str, request_id: str, developer_id: str):
    # Only the configured checkout URL is ever a redirect target: nothing from the request
    # chooses where the browser goes. The browser carries an opaque state only; the checkout
    # service resolves it (POST /billing/checkout-state, signed) to the ids it needs.
    state = secrets.token_urlsafe(24)
    _runtime().redis.set(CHECKOUT_PREFIX + state,
                         json.dumps({"key_request_id": request_id, "developer_id": developer_id}),
                         ex=CHECKOUT_TTL)
    query = urlencode({"state": state})
    return redirect(f"{checkout}{'&' if '?' in checkout else '?'}{query}", code=303)


def checkout_state(state: str) -> dict | None:
    """The ids behind a checkout state handed to the browser, while it is valid."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", state):
        return None
    raw = _runtime().redis.get(CHECKOUT_PREFIX + state)
    return json.loads(raw) if raw else None
