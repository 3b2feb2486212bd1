"""The Slack messages (Block Kit, https://api.slack.com/block-kit): a request waiting for
people with Approve and Deny buttons, the same message once decided, the deny modal.

Every text a developer controls (name, email, company, fields, and a rule's reason, which
may quote them) is made inert: `&`, `<` and `>` escaped as Slack asks
(https://api.slack.com/reference/surfaces/formatting#escaping), which leaves no `<!channel>`,
`<@U…>` or `<http://…|…>` to parse, and set in a code span, where Slack neither links URLs
nor reads `*bold*` or `@here`; backticks and line breaks are dropped so it cannot leave it.
"""

from __future__ import annotations

import re

APPROVE, DENY, REASON_BLOCK, REASON_INPUT, DENY_CALLBACK = (
    "approve", "deny", "reason", "reason_input", "deny_reason")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029`]+")
PAST = {"approve": "Approved", "deny": "Denied"}


def escape(text: str) -> str:
    """Text with Slack's three control characters escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def inert(text, limit: int = 200) -> str:
    """Developer-controlled text shown as itself: escaped, one line, in a code span."""
    cleaned = " ".join(_CONTROL.sub(" ", str(text or "")).split())[:limit]
    return f"`{escape(cleaned)}`" if cleaned else "_none_"


def _about(state: dict, request_id: str) -> list[dict]:
    who = " · ".join(inert(v, 100) for v in (state.get("developer_name"),
                                             state.get("developer_company")) if v)
    fields = state.get("request_fields") or {}
    lines = [
        f"*Developer* {inert(state.get('developer_email') or state.get('developer_id'))}"
        + (f" {who}" if who else ""),
        f"*Asked for* {inert(', '.join(state.get('policy_names') or state.get('policies') or []))}",
        f"*Sent here by* rule {inert(state.get('review_rule') or state.get('rule'), 100)}: "
        f"{inert(state.get('review_reason') or state.get('reason'), 300)}",
        *[f"{inert(k, 50)}: {inert(v)}" for k, v in list(fields.items())[:5]],
    ]
    return [{"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:3000]}},
            {"type": "context", "elements": [{"type": "mrkdwn",
                                              "text": f"Key request {inert(request_id, 64)}"}]}]


def waiting(state: dict, request_id: str, page_url: str | None) -> dict:
    """The message posted when a request waits for people: its summary and the buttons."""
    text = f"Key request {escape(request_id)} awaits a decision"
    buttons = [
        {"type": "button", "action_id": APPROVE, "value": request_id, "style": "primary",
         "text": {"type": "plain_text", "text": "Approve"},
         # A tap by mistake approves nothing: Slack asks first.
         "confirm": {"title": {"type": "plain_text", "text": "Approve this request?"},
                     "text": {"type": "plain_text",
                              "text": "The developer gets the key at once."},
                     "confirm": {"type": "plain_text", "text": "Approve"},
                     "deny": {"type": "plain_text", "text": "Cancel"}}},
        {"type": "button", "action_id": DENY, "value": request_id, "style": "danger",
         "text": {"type": "plain_text", "text": "Deny…"}},
    ]
    if page_url:
        buttons.append({"type": "button", "action_id": "open", "url": page_url,
                        "text": {"type": "plain_text", "text": "Open in the console"}})
    return {"text": text, "blocks": [
        {"type": "header", "text": {"type": "plain_text",
                                    "text": "A key request awaits a decision"}},
        *_about(state, request_id),
        {"type": "actions", "block_id": "decide", "elements": buttons}]}


def decided(state: dict, request_id: str) -> dict:
    """The same message once the request is decided (anywhere): outcome, who, when; no
    buttons."""
    outcome = state.get("outcome") or ""
    by = state.get("decided_by") or f"rule {state.get('rule') or 'default'}"
    if state.get("state") == "skipped":
        headline = "*No longer pending in Tyk*"
    else:
        headline = f"*{PAST.get(outcome, 'Decided')}* by {inert(by, 100)}"
    via = f" via {escape(str(state['via']))[:20]}" if state.get("via") else ""
    when = escape(str(state.get("decided_at") or ""))[:40]
    reason = f"\n>{inert(state.get('reason'), 300)}" if state.get("reason") else ""
    return {"text": f"Key request {escape(request_id)}: {PAST.get(outcome, 'decided')}",
            "blocks": [{"type": "section", "text": {
                "type": "mrkdwn", "text": f"{headline}{via} at {when}{reason}"[:3000]}},
                *_about(state, request_id)]}


def deny_modal(request_id: str, private: str) -> dict:
    """The modal asking for the reason of a denial (views.open); `private` comes back in
    the view_submission as `private_metadata`."""
    return {"type": "modal", "callback_id": DENY_CALLBACK, "private_metadata": private,
            "title": {"type": "plain_text", "text": "Deny the request"},
            "submit": {"type": "plain_text", "text": "Deny"},
            "close": {"type": "plain_text", "text": "Cancel"},
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": (
                    f"Key request {inert(request_id, 64)}: the reason is recorded, and "
                    "emailed to the developer if configured.")}},
                {"type": "input", "block_id": REASON_BLOCK,
                 "label": {"type": "plain_text", "text": "Reason"},
                 "element": {"type": "plain_text_input", "action_id": REASON_INPUT,
                             "multiline": True, "max_length": 500}}]}


def digest(group: str, requests: list[dict]) -> dict:
    """A group's daily digest: what waits for it, oldest first, each with its console page."""
    lines = []
    for r in requests[:40]:
        page = f" <{r['console_url']}|open>" if r.get("console_url") else ""
        lines.append(f"• {inert(r.get('request_id'), 64)} waiting {escape(r.get('waited', ''))}:"
                     f" {inert(r.get('developer_email'))} asks for "
                     f"{inert(', '.join(r.get('policies') or []))} ({escape(r.get('left', ''))})"
                     f"{page}")
    title = f"{len(requests)} key request{'' if len(requests) == 1 else 's'} wait for " \
            f"{escape(group)}"
    return {"text": title, "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:3000]}}]}
