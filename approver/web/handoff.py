"""The redirect-on-key-request hand-off and the developer's status page."""

from __future__ import annotations

import time
from urllib.parse import urlencode

from flask import Blueprint, current_app, redirect, request, url_for

from approver import enqueue, signing
from approver import store as st
from approver.web.pages import page

bp = Blueprint("handoff", __name__)

# Tyk adds the key request id to the hand-off, under a name it does not document
# (Tyk CONTRACT §2.2): accept each plausible one, from the query or a form.
ID_NAMES = ("key_request_id", "id", "request_id", "key_request")
WAIT_SECONDS = 3.0
STATUS_TTL = 30 * 86400
CHECKOUT_TTL = 3600


def _runtime():
    return current_app.extensions["approver"]


def _request_id() -> str | None:
    for name in ID_NAMES:
        value = request.values.get(name)
        if value:
            return value.strip()
    return None


@bp.route("/handoff", methods=["GET", "POST"])
def handoff():
    """A developer's browser arrives from the portal with a key request id."""
    request_id = _request_id()
    if not request_id:
        return page(400, "No key request", "This link does not name a key request.",
                    advice="Start again from the developer portal.")
    if not enqueue.ID_PATTERN.match(request_id):
        return _unknown()
    rt = _runtime()
    state = rt.store.state(request_id)
    if not state or state["state"] not in st.FINAL_STATES | st.INBOX_STATES:
        # The worker re-reads the request from the Dashboard (the web tier never calls
        # it): queue the decision and give it a moment before answering.
        enqueue.decision(rt.queue, request_id, "handoff", rt.settings.retry_delays)
        state = _await_state(rt, request_id)
    return _answer(request_id, state, from_handoff=True)


@bp.get("/status/<token>")
def status(token: str):
    """Where a developer's key request stands, for the holder of a signed link."""
    try:
        payload = signing.verify(_runtime().settings.secret_key, token, "status")
    except signing.BadToken:
        return page(404, "Link not valid", "This status link is not valid or has expired.",
                    advice="Ask for access again from the developer portal.")
    request_id = str(payload.get("kr", ""))
    rt = _runtime()
    state = rt.store.state(request_id)
    if state is None and enqueue.ID_PATTERN.match(request_id):
        # Never decided (or its record is gone): queue it, so the page does not wait forever.
        enqueue.decision(rt.queue, request_id, "status", rt.settings.retry_delays)
    return _answer(request_id, state, from_handoff=False)


def _await_state(rt, request_id: str) -> dict | None:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        state = rt.store.state(request_id)
        if state and state["state"] in st.FINAL_STATES | st.INBOX_STATES:
            return state
        if time.monotonic() >= deadline:
            return state
        time.sleep(0.05)


def _status_url(request_id: str) -> str:
    rt = _runtime()
    token = signing.sign(rt.settings.secret_key, {"kr": request_id}, STATUS_TTL, "status")
    path = url_for("handoff.status", token=token)
    base = rt.settings.public_url
    return f"{base}{path}" if base else url_for("handoff.status", token=token, _external=True)


def _unknown():
    return page(404, "Key request not found",
                "We could not find this key request in the developer portal.",
                advice="It may have been withdrawn. Start again from the developer portal.")


def _answer(request_id: str, state: dict | None, from_handoff: bool):
    common = {"request_id": request_id, "status_url": _status_url(request_id)}
    name = (state or {}).get("state")
    outcome = (state or {}).get("outcome")
    reason = (state or {}).get("reason")
    if name == st.SKIPPED and "no longer exists" in (reason or ""):
        return _unknown()
    if name == st.SKIPPED:
        return page(200, "Already approved", "This key request was already approved.",
                    advice="Your key is in the developer portal.", **common)
    if name == st.APPLIED and outcome == "approve":
        return page(200, "Approved", "Your key request is approved.",
                    advice="Your key is in the developer portal (and on its way by email).",
                    **common)
    if name == st.APPLIED and outcome == "deny":
        return page(200, "Not approved", "Your key request was not approved.", reason=reason,
                    advice="If you think this is a mistake, contact the API's owners.", **common)
    if name in (st.APPLIED, st.SHADOWED, st.IN_REVIEW):
        return page(200, "Waiting for review", "A person will look at your key request.",
                    reason=reason, advice="You will hear from the portal once it is decided.",
                    **common)
    if name == st.WAITING:
        checkout = _runtime().settings.checkout_url
        if from_handoff and checkout and (state.get("wait") or {}).get("for") == "billing":
            return _to_checkout(checkout, request_id, state.get("developer_id") or "")
        return page(200, "Waiting for payment", "Your key request waits for your subscription.",
                    reason=reason, advice="It is approved as soon as billing confirms it.",
                    **common)
    # Not decided yet (or being retried): the status page refreshes itself.
    return page(202, "Being processed", "Your key request is being processed.",
                refresh=5 if not from_handoff else None, **common)


def _to_checkout(checkout: str, request_id: str, developer_id: str):
    # Only the configured checkout URL is ever a redirect target: nothing from the
    # request chooses where the browser goes.
    rt = _runtime()
    state = signing.sign(rt.settings.secret_key, {"kr": request_id, "dev": developer_id},
                         CHECKOUT_TTL, "checkout")
    query = urlencode({"key_request_id": request_id, "developer_id": developer_id,
                       "state": state})
    return redirect(f"{checkout}{'&' if '?' in checkout else '?'}{query}", code=303)
