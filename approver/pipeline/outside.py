"""Outside approvers: a step of a rule that names an email address (`email:
legal@partner.example`), someone with no account. When a request reaches that step, the
address is mailed the request's summary with Approve and Deny links of its own, bound to
the step (`pipeline/actions.py`); using one decides the step as that address (`by:
email:ADDRESS`, `via: email`), under the same four-eyes checks as anyone. A link dies once
the step or the request is decided elsewhere.

Without mail or a public URL nothing can reach them: the step is logged as waiting for
the admins' group, which may decide it in the console.
"""

from __future__ import annotations

import contextlib

from rq import Retry
from rq.exceptions import DuplicateJobError

from approver.pipeline import actions
from approver.pipeline.enqueue import notify_queue
from approver.pipeline.notify import mail
from approver.pipeline.runtime import Runtime
from approver.pipeline.steps import outsider
from approver.state import steps as progress

TEMPLATE = "outside_review"


def mail_step(rt: Runtime, ref: str, state: dict, step: int, address: str) -> bool:
    """Queue the mail to the outside approver of step `step`, once per step."""
    if not progress.mark(rt.store, ref, state["approvals_id"], f"asked:{step}"):
        return False
    recipient = mail.address(address)
    if not (rt.settings.smtp_url and rt.settings.public_url and recipient):
        rt.store.log("step_unreachable", ref, by="email", via="email", step=f"email {address}",
                     why="no mail or no public URL configured: the admins' group decides it")
        return False
    values = {"decision_id": f"{state['approvals_id']}-{step}", "request_id": ref,
              "developer_email": state.get("developer_email") or "",
              "policies": list(state.get("policy_names") or state.get("policies") or []),
              "reason": state.get("reason") or "", "step": f"email {recipient}",
              "link_step": actions.step_of(state, step), "link_subject": outsider(recipient)}
    with contextlib.suppress(DuplicateJobError):
        notify_queue(rt.queue).enqueue(
            mail.SEND, TEMPLATE, [recipient], values,
            job_id=f"mail-{TEMPLATE}-{values['decision_id']}", unique=True,
            retry=Retry(max=len(mail.RETRY_DELAYS), interval=list(mail.RETRY_DELAYS)),
            job_timeout=60, result_ttl=mail.KEEP, failure_ttl=mail.KEEP,
            description=f"email the outside approver of key request {ref}")
    rt.store.log("step_mailed", ref, by="email", via="email", step=f"email {recipient}")
    return True
