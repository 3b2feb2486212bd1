"""Email about decisions: the developer told the outcome and the reason, admins told when a
request enters review. Sent by RQ jobs with retries, at most once per decision.

A developer's message carries the decision's `message` (the rule's, a person's reason, or
the outcome's plain default), never a rule id, a fact or a rule's internal `reason`: those
are for admins, whose messages carry them.

Messages come from templates (a subject, a text and an HTML part each): the shipped set in
`mail_templates/` beside this file, any of which an admin's own folder
(APPROVER_MAIL_TEMPLATES) overrides. Templates see only named, non-secret values: never a
key, a key id or a fact.
"""

from __future__ import annotations

import hashlib
import logging
import re
import smtplib
import ssl
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from urllib.parse import unquote, urlsplit

from jinja2 import ChoiceLoader, FileSystemLoader, select_autoescape
from jinja2.sandbox import SandboxedEnvironment
from rq import Retry
from rq.exceptions import DuplicateJobError

from approver import state as st
from approver.errors import ApproverError
from approver.pipeline import actions, runtime
from approver.pipeline.enqueue import notify_queue
from approver.rules import developer_message

log = logging.getLogger(__name__)

# The job's dotted path, kept in approver/mail.py: queued jobs and older workers name it.
SEND = "approver.mail.send"
TEMPLATES = Path(__file__).parent / "mail_templates"
RETRY_DELAYS = (10, 60, 300, 900, 3600)
TIMEOUT = 15
KEEP = 30 * 86400
# Messages whose recipients each get Approve and Deny links of their own (pipeline/actions),
# made for their address; a message whose values name `link_subject` (an outside approver,
# a group's member) gets links made for that subject, bound to `link_step`.
LINKED = ("admin_review",)
PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}
# One address, no display name, nothing that could end a header or add a recipient.
_ADDRESS = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@"
                      r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


class MailError(ApproverError):
    """A message could not be handed to the SMTP server; the message holds no secret."""


def address(text: str | None) -> str | None:
    """`text` if it is one plain email address, else None."""
    text = (text or "").strip()
    return text if len(text) <= 254 and _ADDRESS.match(text) else None


# -- choosing and queueing (runs where decisions are made; never raises) -------------------
def messages_for(record: dict, settings) -> list[tuple[str, list[str]]]:
    """(template, recipients) for each message a decision record calls for."""
    if not getattr(settings, "smtp_url", None) or record.get("mode") == "shadow":
        return []
    outcome, state = record.get("outcome"), record.get("state")
    found = []
    # Decisions made in Tyk itself are Tyk's to announce; ours are told once carried out.
    told = (state == st.APPLIED and outcome in ("approve", "deny")) or (
        state == st.IN_REVIEW and outcome == "review")
    developer = address(record.get("developer_email"))
    if told and outcome in settings.mail_on and developer and (
            record.get("decided_by") != "tyk"):
        found.append((f"developer_{outcome}", [developer]))
    admins = [a for a in map(address, settings.mail_admins) if a]
    if state == st.IN_REVIEW and admins:
        found.append(("admin_review", admins))
    return found


def enqueue(queue_or_connection, settings, record: dict, request_id: str,
            strict: bool = False) -> int:
    """Queue one job per message a decision record calls for; the number queued (a failure
    is logged, or raised if `strict`)."""
    try:
        wanted = messages_for(record, settings)
        if not wanted or not record.get("decision_id"):
            return 0
        queue = notify_queue(queue_or_connection,
                             getattr(settings, "queue_name", None) or "approver")
        queued = 0
        for template, recipients, job_id in _jobs(wanted, record["decision_id"], settings):
            try:
                queue.enqueue(
                    SEND, template, recipients, values(template, record, request_id, settings),
                    job_id=job_id, unique=True,
                    retry=Retry(max=len(RETRY_DELAYS), interval=list(RETRY_DELAYS)),
                    job_timeout=60, result_ttl=KEEP, failure_ttl=KEEP,
                    description=f"email {template} about key request {request_id}")
                queued += 1
            except DuplicateJobError:
                pass
        return queued
    except Exception as exc:  # the decision path must never fail on an email
        if strict:
            raise
        log.warning("email about key request %s not queued: %s", request_id,
                    type(exc).__name__)
        return 0


def _jobs(wanted, decision_id: str, settings):
    """(template, recipients, job id) per message: one per recipient where each gets action
    links of their own (a request awaits review and the service has a public URL)."""
    for template, recipients in wanted:
        if template in LINKED and getattr(settings, "public_url", None):
            for recipient in recipients:
                yield template, [recipient], f"mail-{template}-{decision_id}-{_tag(recipient)}"
        else:
            yield template, recipients, f"mail-{template}-{decision_id}"


def _tag(recipient: str) -> str:
    return hashlib.sha256(recipient.lower().encode()).hexdigest()[:16]


def values(template: str, record: dict, request_id: str, settings) -> dict:
    """What a template may show: named values only (developer-controlled ones are escaped
    in the HTML part by the template engine). A developer's template gets the decision's
    message; only an admin's gets the rule and its reason."""
    found = {
        "decision_id": record["decision_id"],
        "request_id": request_id,
        "portal": "new Developer Portal" if record.get("portal") == "portal" else "portal",
        "outcome": record.get("outcome") or "",
        "message": developer_message(record.get("outcome"), record.get("message")),
        "developer_email": record.get("developer_email") or "",
        "policies": list(record.get("policy_names") or record.get("policies") or []),
        "decided_at": record.get("decided_at") or "",
    }
    if template.startswith("developer_"):
        return found
    base = getattr(settings, "public_url", None)
    return {**found, "reason": record.get("reason") or "",
            "rule": record.get("rule") or "default",
            "console_url": f"{base}/console/requests/{request_id}" if base else ""}


# -- rendering ------------------------------------------------------------------------------
def environment(folder: Path | None) -> SandboxedEnvironment:
    """Templates from the admin's folder first, then the shipped set; HTML autoescaped."""
    loaders = [FileSystemLoader(str(folder))] if folder else []
    return SandboxedEnvironment(
        loader=ChoiceLoader([*loaders, FileSystemLoader(str(TEMPLATES))]),
        autoescape=select_autoescape(["html"], default_for_string=False, default=False),
        keep_trailing_newline=True,
    )


def render(template: str, recipients: list[str], values: dict, settings) -> EmailMessage:
    """The message: subject, a text part and an HTML part, from the templates."""
    env = environment(settings.mail_templates)
    subject = _CONTROL.sub(" ", env.get_template(f"{template}.subject.txt").render(values))
    # Lines up to RFC 5322's 998: a subject is never folded onto a line of its own (which
    # some readers show with a leading space).
    message = EmailMessage(policy=policy.SMTP.clone(max_line_length=998))
    message["Subject"] = " ".join(subject.split())[:200]
    message["From"] = settings.mail_from
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=settings.mail_from.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    message.set_content(env.get_template(f"{template}.txt").render(values))
    message.add_alternative(env.get_template(f"{template}.html").render(values), subtype="html")
    return message


# -- sending (runs in a worker) -------------------------------------------------------------
def _marker(template: str, decision_id: str, recipients: list[str]) -> str:
    alone = f":{_tag(recipients[0])}" if template in LINKED and len(recipients) == 1 else ""
    return f"{st.PREFIX}mail:{template}:{decision_id}{alone}"


def send(template: str, recipients: list[str], values: dict) -> dict:
    """RQ job: send one message, at most once per decision; raise so RQ retries when the
    server certainly did not take it."""
    rt = runtime.current()
    settings = rt.settings
    if not settings.smtp_url:
        log.warning("email %s: APPROVER_SMTP_URL is no longer set; dropped", template)
        return {"template": template, "dropped": True}
    marker = _marker(template, values["decision_id"], recipients)
    if not rt.redis.set(marker, "sending", nx=True, ex=KEEP):
        return {"template": template, "already": rt.redis.get(marker).decode()}
    try:
        if len(recipients) == 1 and (template in LINKED or values.get("link_subject")):
            # Made here, once per message sent: the token is in the mail and nowhere else.
            values = {**values, **actions.links(
                rt.store, settings, recipients[0], values["request_id"],
                values.get("link_step", ""), values.get("link_subject", ""))}
        message = render(template, recipients, values, settings)
    except BaseException:
        rt.redis.delete(marker)
        raise
    try:
        deliver(settings.smtp_url, message)
    except MailError:
        rt.redis.delete(marker)  # not taken: the retry may send it
        raise
    except Exception as exc:
        # The connection broke while the message was being sent: it may have arrived, so
        # it is not sent again (at most once).
        rt.redis.set(marker, "uncertain", ex=KEEP)
        log.warning("email %s about key request %s may not have been sent: %s", template,
                    values.get("request_id"), type(exc).__name__)
        return {"template": template, "uncertain": True}
    rt.redis.set(marker, "sent", ex=KEEP)
    log.info("email %s about key request %s sent to %d recipient(s)", template,
             values.get("request_id"), len(recipients))
    return {"template": template, "sent": len(recipients)}


def deliver(url: str, message: EmailMessage) -> None:
    """Hand a message to the SMTP server the URL names (STARTTLS or TLS as it says).

    MailError when the message was certainly not taken (no connection, refused); other
    errors when the connection broke during the transfer.
    """
    parts = urlsplit(url)
    host, port = parts.hostname or "localhost", parts.port or PORTS[parts.scheme]
    try:
        client = _connect(parts, host, port)
    except smtplib.SMTPResponseException as exc:
        raise MailError(f"the SMTP server {host} refused us: {exc.smtp_code}") from None
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"could not reach the SMTP server {host}:{port}: "
                        f"{type(exc).__name__}") from None
    with client:
        try:
            client.send_message(message)
        except smtplib.SMTPResponseException as exc:
            # The server answered no (to the sender or the data): nothing was taken.
            raise MailError(f"the SMTP server {host} refused the message: "
                            f"{exc.smtp_code}") from None
        except smtplib.SMTPRecipientsRefused:
            raise MailError(f"the SMTP server {host} refused every recipient") from None


def _connect(parts, host: str, port: int) -> smtplib.SMTP:
    context = ssl.create_default_context()
    if parts.scheme == "smtps":
        client = smtplib.SMTP_SSL(host, port, timeout=TIMEOUT, context=context)
    else:
        client = smtplib.SMTP(host, port, timeout=TIMEOUT)
    try:
        if parts.scheme == "smtp+starttls":
            client.starttls(context=context)
        if parts.username:
            client.login(unquote(parts.username), unquote(parts.password or ""))
    except BaseException:
        client.close()
        raise
    return client
