"""Deciding from Slack: a request waiting for people is posted with Approve and Deny
buttons to the channel of the group its current step waits for (`slack:` in groups.yaml),
else to the reviewers' channel (APPROVER_SLACK_CHANNEL); its reminders and escalations go in
that message's thread, and a group's digest to the group's channel. A click is checked in
the web tier (Slack's signature) and carried out here, in a worker: the person who clicked
is found (APPROVER_SLACK_USERS, else the email Slack has for them), must be allowed to
decide, and decides through the console's claim (`via: slack`); anyone else is told
privately and nothing happens. Once the request is
decided, anywhere, a worker updates the message for everyone: outcome, who, when, no
buttons.

Jobs run on the notification queue, retried with back-off; a Slack that is down delays the
message, never a decision.
"""

from __future__ import annotations

import contextlib
import json
import logging

from rq import Retry
from rq.exceptions import DuplicateJobError

from approver import slack
from approver import state as st
from approver.pipeline import deciders, review, runtime, steps
from approver.pipeline.enqueue import notify_queue
from approver.rules.groups import load as load_contacts

log = logging.getLogger(__name__)

# The jobs' dotted paths, kept in approver/notify.py: queued jobs and older workers name them.
POST, UPDATE, ACT = ("approver.notify.slack_post", "approver.notify.slack_update",
                     "approver.notify.slack_act")
DIGEST, NOTE = "approver.notify.slack_digest", "approver.notify.slack_note"
VIA = "slack"
MESSAGE_KEY = st.PREFIX + "slack:message:"  # + request id: {channel, ts} of its newest message
EARLIER = ":earlier"  # MESSAGE_KEY + request id + this: its earlier messages (other channels)
KEEP = 30 * 86400
RETRY_DELAYS = (5, 30, 120, 600, 1800)
_POSTING = "posting"  # what an earlier version kept under MESSAGE_KEY while posting


def configured(settings) -> bool:
    return bool(getattr(settings, "slack_bot_token", None) and settings.slack_channel)


def channel_of(settings, group: str | None) -> str:
    """Where a group's requests and digest go: its own channel, else the reviewers'."""
    contact = load_contacts(settings.rules_path)[0].get(group or "") or {}
    return contact.get("slack") or settings.slack_channel


def _group_of(store: st.Store, request_id: str, state: dict) -> str | None:
    """The group the request's current step waits for (None: no steps, or not a group's)."""
    now = steps.standing(store, request_id, state) if state.get("approvals_id") else None
    if not now or not now["steps"]:
        return None
    return now["steps"][min(now["current"], len(now["steps"]) - 1)]["group"]


def client(settings) -> slack.SlackClient:
    return slack.SlackClient(settings.slack_api_url, settings.slack_bot_token)


# -- queued where decisions are announced (never raises) -------------------------------------
def enqueue(queue_or_connection, settings, record: dict, request_id: str) -> int:
    """Queue the post of a request entering review, or the update of its message once it
    is decided; the number of jobs queued."""
    try:
        if not configured(settings) or record.get("mode") == "shadow":
            return 0
        state = record.get("state")
        if state == st.IN_REVIEW and record.get("outcome") == "review":
            job, key = POST, f"slack-post-{request_id}-{record.get('decision_id')}"
        elif state in (st.APPLIED, st.SKIPPED):
            job, key = UPDATE, f"slack-update-{request_id}-{record.get('decision_id')}"
        else:
            return 0
        _queue(queue_or_connection, settings, job, key, request_id, about=request_id)
        return 1
    except DuplicateJobError:
        return 0
    except Exception as exc:  # the decision path must never fail on a notification
        log.warning("Slack message about key request %s not queued: %s", request_id,
                    type(exc).__name__)
        return 0


def _queue(queue_or_connection, settings, job: str, key: str, *args, about: str) -> None:
    queue = notify_queue(queue_or_connection, getattr(settings, "queue_name", None)
                         or "approver")
    queue.enqueue(job, *args, job_id=key, unique=True,
                  retry=Retry(max=len(RETRY_DELAYS), interval=list(RETRY_DELAYS)),
                  job_timeout=60, result_ttl=KEEP, failure_ttl=KEEP,
                  description=f"Slack: {job.rpartition('.')[2]} key request {about}")


# -- jobs (run in a worker) --------------------------------------------------------------------
def post(request_id: str) -> dict:
    """RQ job: post a request waiting for people to its current step's group's channel (else
    the reviewers'), once per channel; raise so RQ retries. A request whose steps moved on
    to a group with another channel is posted there too (`step_reached`): the newest
    message gets the thread notes, and every one of them is updated once it is decided."""
    rt = runtime.current()
    settings = rt.settings
    if not configured(settings):
        return {"dropped": True}
    state = rt.store.state(request_id) or {}
    if state.get("state") not in st.INBOX_STATES:
        return {"skipped": "no longer awaiting a decision"}
    key = MESSAGE_KEY + request_id
    channel = channel_of(settings, _group_of(rt.store, request_id, state))
    marker = f"{key}:in:{channel}"
    if not rt.redis.set(marker, "1", nx=True, ex=KEEP):
        return {"already": True}
    page = (f"{settings.public_url}/console/requests/{request_id}"
            if settings.public_url else None)
    try:
        channel, ts = client(settings).post_message(
            channel, slack.waiting(state, request_id, page))
    except slack.SlackError:
        rt.redis.delete(marker)
        raise
    earlier = rt.redis.set(key, json.dumps({"channel": channel, "ts": ts}), ex=KEEP, get=True)
    if earlier is not None and earlier.decode() != _POSTING:
        rt.redis.rpush(key + EARLIER, earlier)
        rt.redis.expire(key + EARLIER, KEEP)
    log.info("key request %s posted to Slack", request_id)
    if (rt.store.state(request_id) or {}).get("state") not in st.INBOX_STATES:
        return update(request_id)  # decided while it was being posted
    return {"channel": channel, "ts": ts}


def update(request_id: str) -> dict:
    """RQ job: show a decided request's messages decided, for everyone; raise to retry."""
    rt = runtime.current()
    if not configured(rt.settings):
        return {"dropped": True}
    key = MESSAGE_KEY + request_id
    raw = rt.redis.get(key)
    if raw is None:
        return {"skipped": "never posted"}
    if raw.decode() == _POSTING:
        raise slack.SlackError("chat.update", "the message is still being posted")
    state = rt.store.state(request_id) or {}
    if state.get("state") in st.INBOX_STATES:
        return {"skipped": "still awaiting a decision"}
    messages = [json.loads(m) for m in (*rt.redis.lrange(key + EARLIER, 0, -1), raw)]
    for where in messages:
        client(rt.settings).update(where["channel"], where["ts"],
                                   slack.decided(state, request_id))
    log.info("Slack message of key request %s updated: %s", request_id, state.get("outcome"))
    return {"updated": messages[-1]["ts"]}


def step_reached(rt, ref: str, state: dict, now: dict) -> None:
    """Queue the post of a request whose steps moved on to a group whose channel is not
    where its message is (never raises: steps go on without Slack)."""
    current = now["current"]
    if not configured(rt.settings) or not 0 < current < len(now["steps"]):
        return
    raw = rt.redis.get(MESSAGE_KEY + ref)
    if raw is None or raw.decode() == _POSTING or json.loads(raw)["channel"] == channel_of(
            rt.settings, now["steps"][current]["group"]):
        return
    later(rt, POST, f"slack-post-{ref}-{state.get('approvals_id')}-{current}", ref, about=ref)


def act(click: dict) -> dict:
    """RQ job: carry out a verified click (approve) or deny modal's submission: the person
    found and allowed decides through a claim; anyone else is told privately."""
    rt = runtime.current()
    settings = rt.settings
    request_id, user = click["request_id"], click["user"]
    if click.get("user_team") and click.get("user_team") != click.get("team"):
        # Slack Connect: someone of another organisation in a shared channel, whose email
        # that organisation vouches for, not ours.
        person, refused = None, "people from another Slack workspace may not decide here"
    else:
        person, refused = _person(rt, user, request_id)
    if refused is None:
        found, refused = deciders.person_of(person, rt.store, settings)
    if refused is None:
        try:  # the console's way: a claim, or an approval counted toward the current step
            taken = steps.act(rt.store, request_id, click["outcome"], click.get("reason", ""),
                              found, VIA, f"slack:{user}", settings.admins_group)
        except review.Refused as exc:  # logged there (claim_refused)
            refused = str(exc)
        else:
            if taken is None:
                _tell(settings, click, "Your approval is recorded; the request waits for its "
                      "remaining steps.")
                return {"counted": True, "by": person}
            try:
                review.enqueue_claim(rt.queue, request_id, taken, settings.retry_delays)
            except Exception:
                rt.store.release_claim(request_id, taken["claim_id"])
                raise
            return {"claimed": taken["claim_id"], "by": person}
    else:
        rt.store.log("claim_refused", request_id, outcome=click["outcome"], by=person or
                     f"slack:{user}", via=VIA, why=refused, **{"from": f"slack:{user}"})
    _tell(settings, click, f"Nothing was done: {refused}.")
    log.info("Slack click on key request %s refused: %s", request_id, refused)
    return {"refused": refused}


def _tell(settings, click: dict, text: str) -> None:
    """Say something to the person who clicked, privately."""
    if click.get("channel"):
        client(settings).tell(click["channel"], click["user"], text[:3000])


def _person(rt, user: str, request_id: str) -> tuple[str | None, str | None]:
    """(who a Slack user is here, None); else (None, why they are nobody here)."""
    settings = rt.settings
    mapped = dict(settings.slack_users).get(user)
    if mapped is None:
        try:
            profile = client(settings).user(user)
        except slack.SlackError as exc:
            if exc.error != "user_not_found":
                raise  # Slack is away: RQ retries
            profile = {"deleted": True}
        if profile.get("deleted") or profile.get("is_bot") or profile.get(
                "is_restricted") or profile.get("is_ultra_restricted"):
            return None, "guests, bots and deactivated Slack users may not decide here"
        mapped = deciders.by_email((profile.get("profile") or {}).get("email"), request_id,
                                   rt.store, settings)
        if mapped is None:
            return None, ("your Slack account is not one of the people who may decide key "
                          "requests; ask an admin to add you")
    return mapped, None


def open_deny(settings, trigger_id: str, request_id: str, channel: str, ts: str) -> None:
    """Open the deny modal for a click (the web tier, within Slack's 3 seconds)."""
    private = json.dumps({"request_id": request_id, "channel": channel, "ts": ts})
    slack.SlackClient(settings.slack_api_url, settings.slack_bot_token,
                      timeout=(1, 2)).open_view(trigger_id, slack.deny_modal(request_id, private))


def queue_click(queue_or_connection, settings, click: dict, key: str) -> None:
    """Queue a verified click's job (the web tier: it never decides or calls Slack itself
    beyond the modal); a redelivered click (the same key) is queued once."""
    with contextlib.suppress(DuplicateJobError):
        _queue(queue_or_connection, settings, ACT, f"slack-act-{key}", click,
               about=click["request_id"])


# -- deadlines (pipeline/deadlines.py): a group's digest, reminders in a request's thread ----
def later(rt, job: str, key: str, *args, about: str) -> None:
    """Queue a digest or a thread note (never raises: deadlines go on without Slack)."""
    if not configured(rt.settings):
        return
    try:
        _queue(rt.queue, rt.settings, job, key, *args, about=about)
    except DuplicateJobError:
        pass
    except Exception as exc:
        log.warning("Slack %s not queued: %s", job.rpartition(".")[2], type(exc).__name__)


def digest(group: str, requests: list[dict]) -> dict:
    """RQ job: post a group's daily digest to its channel (else the reviewers')."""
    settings = runtime.current().settings
    if not configured(settings):
        return {"dropped": True}
    channel, ts = client(settings).post_message(channel_of(settings, group),
                                                slack.digest(group, requests))
    return {"channel": channel, "ts": ts}


def note(request_id: str, text: str) -> dict:
    """RQ job: a reminder or an escalation, in the thread of the request's message (if it
    was posted); `text` is ours (no developer text), escaped all the same."""
    rt = runtime.current()
    raw = rt.redis.get(MESSAGE_KEY + request_id) if configured(rt.settings) else None
    if raw is None or raw.decode() == _POSTING:
        return {"skipped": "no message to reply to"}
    where = json.loads(raw)
    client(rt.settings).post_message(where["channel"], {"text": slack.escape(text)[:3000]},
                                     thread_ts=where["ts"])
    return {"thread": where["ts"]}
