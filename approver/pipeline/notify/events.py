"""Notifications: Standard Webhooks events and Slack messages about decisions, queued for RQ.

The decision path calls `enqueue_notifications` (it never raises and only writes to Redis);
the sending is done by `delivery.deliver` jobs on a queue of their own (`<queue>-notify`),
retried with back-off, so a slow or dead receiver never delays or fails a decision.

Job arguments hold no secret: the signing secret is read by the worker when it signs, and
destinations are named by a digest of their URL (a Slack incoming-webhook URL is itself a
credential, and receiver URLs may carry tokens), resolved against the worker's settings.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import redis
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError

from approver.config import NOTIFY_KINDS, Settings
from approver.errors import ApproverError
from approver.pipeline import slackapp
from approver.pipeline.enqueue import notify_queue
from approver.pipeline.notify import mail
from approver.rules import developer_message
from approver.state import now_iso

log = logging.getLogger(__name__)

# The jobs' dotted paths, kept in approver/notify.py: queued jobs and older workers name them.
DELIVER = "approver.notify.deliver"
WEBHOOK, SLACK = "webhook", "slack"
KINDS = NOTIFY_KINDS
EVENT_TYPES = {
    "review": "key_request.reviewed",
    "wait": "key_request.waiting",
    "approve": "key_request.approved",
    "deny": "key_request.denied",
}
# Outcomes that are news only once Tyk has carried them out.
_APPLIED_ONLY = ("approve", "deny")
RETRY_DELAYS = (5, 30, 120, 600, 1800)
TIMEOUT = (3.05, 10)
JOB_TIMEOUT = 60
# Finished and failed jobs are kept this long: their ids are what makes a repeated decision
# run (a resumed apply, a redelivered job) collapse into the notification already sent.
KEEP = 7 * 86400
USER_AGENT = "tyk-approver-notify/1"
# ASSUMPTION: the path of a key request's page in the Tyk Dashboard UI (classic portal).
# The Dashboard API documents /api/portal/requests/{id}; the UI route is not documented
# and differs between Dashboard versions, so check it against yours.
DASHBOARD_REQUEST_PATH = "/#/portal/requests/{id}"
# ASSUMPTION, as above: a developer's page in the Dashboard UI (classic portal).
DASHBOARD_DEVELOPER_PATH = "/#/portal/developers/{id}"
_NEW_PORTAL_PREFIX = "portal-"  # approver.pipeline.sources.ref() of a new Developer Portal request


class NotifyError(ApproverError):
    """A notification could not be delivered; the message holds no URL path or secret."""


@dataclass(frozen=True)
class NotifySettings:
    """Where notifications go and which outcomes are announced."""

    urls: tuple[str, ...] = ()
    secret: str | None = None
    slack_url: str | None = None
    on: frozenset[str] = frozenset(KINDS)

    def __repr__(self) -> str:  # the secret and the Slack URL are credentials
        hosts = [url_host(u) for u in self.urls]
        return (f"NotifySettings(urls={hosts}, secret={'set' if self.secret else None}, "
                f"slack={'set' if self.slack_url else None}, on={sorted(self.on)})")

    @classmethod
    def from_settings(cls, settings: Settings) -> NotifySettings:
        """The notify_* fields of the service settings (checked there)."""
        return cls(urls=settings.notify_urls, secret=settings.notify_secret,
                   slack_url=settings.slack_webhook_url, on=frozenset(settings.notify_on))

    @property
    def enabled(self) -> bool:
        return bool(self.urls or self.slack_url)

    def destinations(self) -> list[tuple[str, str, str]]:
        """(destination ref, kind, url) for every configured receiver."""
        found = [(ref(u), WEBHOOK, u) for u in self.urls]
        if self.slack_url:
            found.append((ref(self.slack_url), SLACK, self.slack_url))
        return found

    def resolve(self, destination: str) -> tuple[str, str] | None:
        """The (kind, url) a destination ref names now, or None if no longer configured."""
        for name, kind, url in self.destinations():
            if name == destination:
                return kind, url
        return None


def ref(url: str) -> str:
    """A stable, non-reversible name for a destination URL (job ids, logs)."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def url_host(url: str) -> str:
    """The host a URL names, for messages (its path and query may be secrets)."""
    return urlsplit(url).hostname or "?"


def event_id(record: dict, request_id: str) -> str:
    """The event's id (and webhook-id): the same for every run of the same decision.

    A request that still waits is decided again (with a new decision id) whenever its facts
    change; its waiting event is keyed on when the wait began, so it is announced once.
    """
    outcome = record.get("outcome") or ""
    if outcome == "wait" and record.get("waited_since"):
        basis = f"wait|{record['waited_since']}"
    else:
        basis = record.get("decision_id") or f"{record.get('decided_at')}"
    digest = hashlib.sha256(f"{request_id}|{outcome}|{basis}".encode()).hexdigest()[:32]
    return f"evt_{digest}"


def request_link(dashboard_url: str | None, request_id: str) -> str | None:
    """The Dashboard UI page of one key request (see DASHBOARD_REQUEST_PATH), if known."""
    if not dashboard_url or request_id.startswith(_NEW_PORTAL_PREFIX):
        # Requests of the new Developer Portal (refs `portal-<id>`) live in that portal's
        # admin UI, whose page path we do not know: no link rather than a wrong one.
        return None
    return dashboard_url.rstrip("/") + DASHBOARD_REQUEST_PATH.format(id=request_id)


def developer_link(dashboard_url: str | None, request_id: str,
                   developer_id: str | None) -> str | None:
    """The Dashboard UI page of a classic-portal developer (DASHBOARD_DEVELOPER_PATH)."""
    if not developer_id or request_link(dashboard_url, request_id) is None:
        return None
    return dashboard_url.rstrip("/") + DASHBOARD_DEVELOPER_PATH.format(
        id=quote(developer_id, safe=""))


def events_for(record: dict, dashboard_url: str | None, request_id: str | None = None) -> dict:
    """The Standard Webhooks event announcing a decision record.

    Only named, non-secret fields are copied: never facts, traces, key ids or raw keys.
    """
    request_id = request_id or record.get("request_id") or record.get("key_request_id")
    if not request_id:
        raise ValueError("the record names no key request")
    outcome = record.get("outcome")
    if outcome not in EVENT_TYPES:
        raise ValueError(f"no event for outcome {outcome!r}")
    data = {
        "key_request_id": request_id,
        "portal": record.get("portal") or "classic",
        "developer_id": record.get("developer_id") or None,
        "policies": list(record.get("policies") or []),
        "outcome": outcome,
        "rule": record.get("rule") or None,
        "reason": record.get("reason") or "",
        # What the developer may be told (the rule's `message`, a person's reason, or the
        # outcome's default): a receiver that writes to developers uses this, not reason.
        "message": developer_message(outcome, record.get("message")),
        "revision": record.get("revision") or None,
        "decision_id": record.get("decision_id") or None,
        "decided_at": record.get("decided_at") or None,
        "decided_by": record.get("decided_by") or None,  # a person, "tyk", or a rule (None)
        "dashboard_url": request_link(dashboard_url, request_id),
    }
    if outcome == "wait":
        deadline = record.get("deadline") or (record.get("wait") or {}).get("deadline")
        data["waiting_since"] = record.get("waited_since") or None
        data["deadline"] = _iso(deadline) if deadline else None
    return {"type": EVENT_TYPES[outcome], "timestamp": now_iso(), "data": data}


def _iso(epoch) -> str | None:
    from datetime import UTC, datetime

    try:
        moment = datetime.fromtimestamp(float(epoch), UTC)
    except (TypeError, ValueError, OverflowError):
        return None
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def wanted(record: dict, on) -> bool:
    """Whether this record is news: announced outcome, acted on, not shadow mode."""
    outcome = record.get("outcome")
    state = record.get("state")
    if outcome not in EVENT_TYPES or outcome not in on:
        return False
    if state == "shadowed" or record.get("mode") == "shadow":
        return False  # shadow mode decides nothing in Tyk: nothing to announce
    if outcome in _APPLIED_ONLY:
        return state == "applied"
    if outcome == "wait":
        return state == "waiting"
    return state in ("in_review", None, "")  # review: recorded, nothing to call in Tyk


def enqueue_notifications(queue_or_connection, settings, record: dict,
                          request_id: str | None = None, strict: bool = False) -> int:
    """Queue one delivery job per destination for a decision record; never raises, unless
    `strict` (then a failure to queue raises, for the caller to try again later).

    `settings` is the service Settings (or a NotifySettings). Returns the number of jobs
    queued (0 when nothing is configured, the outcome is not announced, or they were
    already queued for this decision). Emails the decision calls for are queued too.
    """
    mail.enqueue(queue_or_connection, settings, record,
                 request_id or record.get("request_id") or "", strict=strict)
    slackapp.enqueue(queue_or_connection, settings, record,
                     request_id or record.get("request_id") or "")
    try:
        notify = settings if isinstance(settings, NotifySettings) else (
            NotifySettings.from_settings(settings))
        if not notify.enabled or not wanted(record, notify.on):
            return 0
        request_id = request_id or record.get("request_id") or record.get("key_request_id")
        dashboard = (getattr(settings, "dashboard_ui_url", None)
                     or getattr(settings, "dashboard_url", None))
        event = events_for(record, dashboard, request_id)
        eid = event_id(record, request_id)
        queue = notify_queue(queue_or_connection,
                             getattr(settings, "queue_name", None) or "approver")
        queued = 0
        for destination, kind, _url in notify.destinations():
            if kind == WEBHOOK and not notify.secret:
                log.warning("notification %s: no APPROVER_NOTIFY_SECRET, webhook to %s "
                            "not sent", eid, destination)
                continue
            queued += _enqueue(queue, destination, event, kind, eid, request_id)
        return queued
    except Exception as exc:  # the decision path must never fail on a notification
        if strict:
            raise
        log.warning("notifications for key request %s not queued: %s", request_id,
                    describe_error(exc))
        return 0


def _enqueue(queue: Queue, destination: str, event: dict, kind: str, eid: str,
             request_id: str) -> int:
    try:
        queue.enqueue(
            DELIVER, destination, event, kind, eid,
            job_id=f"notify-{eid}-{destination}", unique=True,
            retry=Retry(max=len(RETRY_DELAYS), interval=list(RETRY_DELAYS)),
            job_timeout=JOB_TIMEOUT, result_ttl=KEEP, failure_ttl=KEEP,
            description=f"notify {kind} {destination}: {event['type']} {request_id}",
        )
    except DuplicateJobError:
        return 0
    return 1


def describe_error(exc: Exception) -> str:
    """An error as a log line may show it: the message of our own and Redis errors, only
    the type of others (whose text may carry a URL with its credentials)."""
    if isinstance(exc, ApproverError | ValueError | redis.RedisError):
        return f"{type(exc).__name__}: {exc}"
    return type(exc).__name__
