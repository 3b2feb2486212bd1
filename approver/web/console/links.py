"""The page a mail's Approve or Deny link opens, and its form.

GET shows the request (summary, trace, a reason field) and changes nothing: mail scanners
fetch every link in a mail before the person does. The form POSTs the token (in the body,
not the address) with a nonce given to that one view of the page: a forged form from
another site knows neither, and a page fetched once is posted at most once. With
APPROVER_ACTION_LINK_SIGN_IN the page asks for a console sign-in first, and acts only for
the person the link was sent to.
"""

from __future__ import annotations

from flask import Blueprint, current_app, g, request

from approver.pipeline import actions, review, steps, validators
from approver.rules import explain
from approver.state import actions as tokens
from approver.web.console import auth
from approver.web.console.pages import message, render

bp = Blueprint("console_links", __name__, url_prefix="/console/act")


def _rt():
    return current_app.extensions["approver"]


def _person(token: str) -> tuple[steps.Person | None, object]:
    """(who is signed in, None) when sign-in is required and done (a trusted proxy's user
    is signed in here as on any console page; a form's CSRF token is checked); (None, the
    answer: the login page, a refused form) when it is required and not done; (None, None)
    when not required, or for an outside approver's link (they have no account)."""
    if not _rt().settings.action_link_sign_in or actions.outside(
            tokens.look(_rt().store, token) if token else None):
        return None, None
    refused = auth.require_login()
    if refused is not None:
        return None, refused
    user = g.console_user
    return steps.Person(user["name"], tuple(user.get("groups") or ()),
                        user.get("email") or ""), None


@bp.get("/<token>")
def page(token: str):
    """The request a link is about, and a form to decide it; never acts."""
    person, elsewhere = _person(token)
    if elsewhere is not None:
        return elsewhere
    found, refusal = actions.check(_rt().store, _rt().settings, token, person)
    if refusal is not None:
        return _refused(actions.refuse(_rt().store, found, refusal, auth.origin(), person))
    return _form(token, found, request.args.get("outcome", ""))


def _form(token: str, found: dict, outcome: str, status: int = 200, error: str | None = None,
          reason: str = ""):
    shown = review.show(_rt().store, found["request_id"])
    return render("act.html", status, title=f"Key request {found['request_id']}",
                  shown=shown, r=shown["request"], steps=explain.steps(shown["trace"]),
                  token=token, nonce=tokens.give_nonce(_rt().store, token),
                  outcome=outcome if outcome in ("approve", "deny") else "",
                  subject=found["subject"].partition(":")[2], error=error, reason=reason,
                  reason_limit=review.REASON_LIMIT)


@bp.post("")
def decide():
    """Decide with a link: its token and this view's nonce, the outcome and a reason."""
    form = request.form
    token, nonce = form.get("token", "")[:100], form.get("nonce", "")[:100]
    person, refused = _person(token)
    if refused is not None:
        if getattr(refused, "status_code", 0) != 302:
            return refused  # a form without this session's CSRF token
        return message(401, "Sign in first", "Sign in to the console, then open the link "
                       "from the mail again.")
    if not tokens.take_nonce(_rt().store, token, nonce):
        return message(400, "Form refused", "This form is out of date or was not sent from "
                       "this service's page. Open the link from the mail again.")
    outcome, reason = form.get("outcome", ""), form.get("reason", "")
    found, refusal, counted = actions.act(_rt(), token, outcome, reason, auth.origin(),
                                          person)
    if refusal is None and counted:
        validators.ask_if_due(_rt(), found["request_id"])  # the next step's validator or mail
        return message(200, "Approval recorded", f"Your approval of key request "
                       f"{found['request_id']} is recorded; the request waits for its "
                       "remaining steps. This link works no more.")
    if refusal is None:
        verb = "Approving" if outcome == "approve" else "Denying"
        return message(200, "Decided", f"{verb} key request {found['request_id']}: it is "
                       "carried out in a moment. This link works no more.")
    if refusal.status == 400:
        return _form(token, found, outcome, 400, refusal.text, reason[:review.REASON_LIMIT])
    return _refused(refusal)


def _refused(refusal: actions.Refusal):
    return message(refusal.status, refusal.title, refusal.text)
