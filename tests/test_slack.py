"""Deciding from Slack: requests posted with buttons to a local server answering as Slack's
Web API does (tests/slack_fake.py), clicks signed as Slack signs them sent to the web app
over HTTP, and the jobs run by a worker against Redis and the sandbox Dashboard."""

import hashlib
import hmac
import json
import time

import pytest
import requests
from slack_sdk.signature import SignatureVerifier

from approver import config
from approver import state as st
from approver.errors import ConfigError
from approver.pipeline import decide, enqueue, slackapp
from approver.slack import SlackClient, SlackError, inert
from tests.conftest import run_jobs, serving
from tests.console_support import add_admin
from tests.slack_fake import CHANNEL, TOKEN, FakeSlack, click, form, sign, submission
from tests.test_review import in_review

SECRET = "slack-signing-secret-for-tests-0123"
# Slack's documented example ("Verifying requests from Slack").
DOC_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
DOC_TIMESTAMP = 1531420618
DOC_BODY = (b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&"
            b"channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&"
            b"command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2F"
            b"commands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id="
            b"398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
DOC_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
MEMBER, MAPPED, STRANGER, GUEST = "U0MEMBER1", "U0MAPPED1", "U0STRANGE", "U0GUEST01"


@pytest.fixture(scope="module")
def fake_slack():
    fake = FakeSlack()
    with serving(fake.app) as url:
        fake.url = url + "/api"
        yield fake


@pytest.fixture
def slack(fake_slack):
    fake_slack.calls.clear()
    fake_slack.messages.clear()
    fake_slack.users.clear()
    fake_slack.limited = False
    fake_slack.channels = {CHANNEL}
    fake_slack.add_user(MEMBER, "reviewers@example.com")
    fake_slack.add_user(MAPPED, "someone-else@example.com")
    fake_slack.add_user(STRANGER, "stranger@example.com")
    fake_slack.add_user(GUEST, "reviewers@example.com", is_restricted=True)
    return fake_slack


@pytest.fixture
def settings(settings, fake_slack):
    return settings.with_(slack_api_url=fake_slack.url, slack_bot_token=TOKEN,
                          slack_signing_secret=SECRET, slack_channel=CHANNEL,
                          slack_users=((MAPPED, "local:alice"),),
                          mail_admins=("reviewers@example.com",),
                          public_url="https://approver.example.com")


@pytest.fixture
def web(app):
    with serving(app) as url:
        yield url + "/hooks/slack/interactive"


@pytest.fixture
def notify_jobs(rt):
    return lambda: run_jobs(rt.redis, enqueue.notify_queue(rt.queue))


@pytest.fixture
def posted(rt, sandbox, slack, notify_jobs):
    """A request in review, posted to the channel: (its id, the message's ts)."""
    ref = in_review(rt, sandbox)
    notify_jobs()
    [(channel, ts)] = list(slack.messages)
    assert channel == CHANNEL
    return ref, ts


def send(web, payload, secret=SECRET, timestamp=None):
    body = form(payload)
    return requests.post(web, data=body, headers=sign(secret, body, timestamp), timeout=5)


def actions_of(message) -> list[dict]:
    return [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


def text_of(message) -> str:
    return json.dumps(message["blocks"])


# -- the signature -------------------------------------------------------------------------------
def test_the_signature_is_checked_as_slack_documents_it():
    class At:
        def __init__(self, now):
            self.moment = now

        def now(self):
            return self.moment

    base = f"v0:{DOC_TIMESTAMP}:".encode() + DOC_BODY
    assert "v0=" + hmac.new(DOC_SECRET.encode(), base, hashlib.sha256).hexdigest() \
        == DOC_SIGNATURE
    assert sign(DOC_SECRET, DOC_BODY, DOC_TIMESTAMP)["X-Slack-Signature"] == DOC_SIGNATURE
    inside = SignatureVerifier(DOC_SECRET, clock=At(DOC_TIMESTAMP + 60))
    assert inside.is_valid(DOC_BODY, str(DOC_TIMESTAMP), DOC_SIGNATURE)
    assert not inside.is_valid(DOC_BODY + b"x", str(DOC_TIMESTAMP), DOC_SIGNATURE)
    late = SignatureVerifier(DOC_SECRET, clock=At(DOC_TIMESTAMP + 5 * 60 + 1))
    assert not late.is_valid(DOC_BODY, str(DOC_TIMESTAMP), DOC_SIGNATURE)


def test_unsigned_stale_or_other_secret_clicks_are_refused(rt, sandbox, posted, web,
                                                           notify_jobs, slack):
    ref, ts = posted
    body = form(click("approve", ref, MEMBER, ts))
    stale = sign(SECRET, body, int(time.time()) - 5 * 60 - 5)
    headers = [{"Content-Type": "application/x-www-form-urlencoded"}, stale,
               sign("another-apps-secret-0123456789", body),
               {**sign(SECRET, body), "X-Slack-Signature": "v0=" + "0" * 64},
               {**sign(SECRET, body), "X-Slack-Request-Timestamp": "+1" + "0" * 9},
               {**sign(SECRET, body), "X-Slack-Signature": "v0=" + "é" * 64}]
    for header in headers:
        answer = requests.post(web, data=body, headers=header, timeout=5)
        assert answer.status_code == 401 and answer.json()["error"]["code"] == "bad_signature"
    # Slack's own example request, signed right but long ago: stale.
    answer = requests.post(web, data=DOC_BODY, headers=sign(DOC_SECRET, DOC_BODY, DOC_TIMESTAMP),
                           timeout=5)
    assert answer.status_code == 401
    notify_jobs()
    assert rt.store.claim_of(ref) is None and slack.called("users.info") == []


# -- posting and clicking ----------------------------------------------------------------------
def test_a_request_in_review_is_posted_with_its_summary_and_buttons(rt, sandbox, posted, slack):
    ref, ts = posted
    [call] = slack.called("chat.postMessage")
    assert call["channel"] == CHANNEL and call["unfurl_links"] is False
    message = slack.messages[(CHANNEL, ts)]
    approve, deny, page = actions_of(message)
    assert (approve["action_id"], approve["value"], approve["style"]) == (
        "approve", ref, "primary")
    assert approve["confirm"]["confirm"]["text"] == "Approve"  # a tap by mistake asks first
    assert (deny["action_id"], deny["value"]) == ("deny", ref)
    assert page["url"] == f"https://approver.example.com/console/requests/{ref}"
    assert "carol" in text_of(message) and "free-mail-to-review" in text_of(message)
    assert json.loads(rt.redis.get(slackapp.MESSAGE_KEY + ref)) == {"channel": CHANNEL,
                                                                     "ts": ts}


def test_a_signed_click_by_a_member_applies_once_and_updates_the_message(
        rt, sandbox, posted, web, slack, notify_jobs, work):
    ref, ts = posted
    assert send(web, click("approve", ref, MEMBER, ts)).status_code == 200
    assert send(web, click("approve", ref, MEMBER, ts)).status_code == 200  # redelivered
    notify_jobs()
    claim = rt.store.claim_of(ref)
    assert (claim["by"], claim["via"], claim["from"]) == (
        "email:reviewers@example.com", "slack", f"slack:{MEMBER}")
    work()
    state = rt.store.state(ref)
    assert (state["state"], state["outcome"], state["via"]) == (st.APPLIED, "approve", "slack")
    assert sandbox.app.sandbox.get_key_request(ref)["approved"] is True
    notify_jobs()
    message = slack.messages[(CHANNEL, ts)]
    assert actions_of(message) == []
    assert "*Approved* by `email:reviewers@example.com` via slack" in text_of(message)
    assert state["decided_at"] in text_of(message)
    # Another click later (a second press, a replay with a new action): told, nothing done.
    assert send(web, click("approve", ref, MEMBER, ts, action_ts="2.2")).status_code == 200
    notify_jobs()
    [told] = slack.called("chat.postEphemeral")
    assert told["user"] == MEMBER and "no longer pending" in told["text"]
    assert len(slack.called("chat.update")) == 1


def test_an_explicitly_mapped_person_decides_as_their_account(rt, sandbox, posted, web, slack,
                                                             notify_jobs):
    ref, ts = posted
    add_admin(rt)
    send(web, click("approve", ref, MAPPED, ts))
    notify_jobs()
    assert rt.store.claim_of(ref)["by"] == "local:alice"
    assert slack.called("users.info") == []


@pytest.mark.parametrize("user", [STRANGER, GUEST, "U0NOBODY1"])
def test_a_non_members_click_changes_nothing_and_is_answered_privately(
        rt, sandbox, posted, web, slack, notify_jobs, user):
    ref, ts = posted
    assert send(web, click("approve", ref, user, ts)).status_code == 200
    notify_jobs()
    assert rt.store.claim_of(ref) is None and rt.store.state(ref)["state"] == st.IN_REVIEW
    [told] = slack.called("chat.postEphemeral")
    assert told["user"] == user and told["text"].startswith("Nothing was done")
    assert actions_of(slack.messages[(CHANNEL, ts)])  # the buttons are still there
    refused = [e for e in rt.store.entries(10) if e["event"] == "claim_refused"]
    assert refused[0]["via"] == "slack"


def test_someone_of_another_workspace_in_a_shared_channel_cannot_decide(
        rt, sandbox, posted, web, slack, notify_jobs):
    ref, ts = posted
    outsider = click("approve", ref, MEMBER, ts)
    outsider["user"]["team_id"] = "T0OTHER01"  # Slack Connect: the same email, their org
    send(web, outsider)
    notify_jobs()
    assert rt.store.claim_of(ref) is None and slack.called("users.info") == []
    [told] = slack.called("chat.postEphemeral")
    assert "another Slack workspace" in told["text"]


def test_deny_opens_a_modal_whose_submission_denies_with_the_reason(
        rt, sandbox, posted, web, slack, notify_jobs, work):
    ref, ts = posted
    assert send(web, click("deny", ref, MEMBER, ts)).status_code == 200
    [opened] = slack.called("views.open")
    assert opened["trigger_id"] == "12345.98765.abcd2358fdea"
    view = opened["view"]
    empty = send(web, submission(view, MEMBER, "  "))
    assert empty.json() == {"response_action": "errors",
                            "errors": {"reason": "A reason is required to deny a request."}}
    assert send(web, submission(view, MEMBER, "not a business address")).status_code == 200
    notify_jobs()
    work()
    notify_jobs()
    state = rt.store.state(ref)
    assert (state["outcome"], state["reason"], state["via"]) == (
        "deny", "not a business address", "slack")
    assert "*Denied* by" in text_of(slack.messages[(CHANNEL, ts)])


def test_a_decision_made_elsewhere_updates_the_message(rt, sandbox, posted, slack, notify_jobs):
    ref, ts = posted
    decide.decide_by_person(rt, ref, "deny", "spam", "local:bob", "console")
    notify_jobs()
    message = slack.messages[(CHANNEL, ts)]
    assert actions_of(message) == [] and "*Denied* by `local:bob` via console" in text_of(
        message)
    assert "free-mail-to-review" in text_of(message)  # why it was left to people


def test_a_slack_that_is_down_is_retried_and_posts_once(rt, sandbox, slack, notify_jobs):
    slack.limited = True
    ref = in_review(rt, sandbox)
    notify_jobs()
    assert slack.messages == {} and rt.redis.get(slackapp.MESSAGE_KEY + ref) is None
    slack.limited = False
    assert slackapp.post(ref)["channel"] == CHANNEL
    assert slackapp.post(ref) == {"already": True}
    assert len(slack.messages) == 1


def test_the_client_names_slacks_error_never_the_token(slack):
    wrong = SlackClient(slack.url, "xoxb-not-the-token-0000")
    with pytest.raises(SlackError) as caught:
        wrong.post_message(CHANNEL, {"text": "x"})
    assert caught.value.error == "invalid_auth" and "xoxb" not in str(caught.value)
    assert "xoxb" not in repr(SlackClient(slack.url, TOKEN))


# -- the attack pass ---------------------------------------------------------------------------
HOSTILE = "<!channel> <@U0BOSS> <https://evil.example|click me> *bold* `code` & @here"


def test_developer_text_cannot_mention_link_or_format(rt, sandbox, slack, notify_jobs):
    in_review(rt, sandbox, fields={"company": HOSTILE, "use_case": HOSTILE})
    notify_jobs()
    [message] = slack.messages.values()
    text = text_of(message) + message["text"]
    for live in ("<!channel>", "<@U0BOSS>", "<https://", "|click me>"):
        assert live not in text
    assert "`&lt;!channel&gt; &lt;@U0BOSS&gt; &lt;https://evil.example|click me&gt; *bold* " \
        "code &amp; @here`" in text
    assert inert("a`b\nc") == "`a b c`" and inert("") == "_none_"


def test_bad_payloads_are_a_400_and_other_interactions_are_ignored(rt, sandbox, posted, web):
    ref, ts = posted
    for body in (b"payload=not-json", b"nothing=here", b"payload=%5B1%5D", b"payload=%ff"):
        answer = requests.post(web, data=body, headers=sign(SECRET, body), timeout=5)
        assert answer.status_code == 400, body
    bad = click("approve", "../../etc", MEMBER, ts)
    assert send(web, bad).status_code == 400
    assert send(web, {"type": "view_closed"}).status_code == 200
    assert send(web, click("open", ref, MEMBER, ts)).status_code == 200
    assert rt.store.claim_of(ref) is None


def test_the_endpoint_is_a_404_without_slack_settings(settings):
    from approver.web import create_app

    client = create_app(settings.with_(slack_bot_token=None)).test_client()
    assert client.post("/hooks/slack/interactive", data=b"x").status_code == 404


@pytest.mark.parametrize("env,message", [
    ({"APPROVER_SLACK_BOT_TOKEN": TOKEN}, "go together"),
    ({"APPROVER_SLACK_BOT_TOKEN": "xoxp-user", "APPROVER_SLACK_SIGNING_SECRET": SECRET,
      "APPROVER_SLACK_CHANNEL": CHANNEL}, "bot token"),
    ({"APPROVER_SLACK_BOT_TOKEN": TOKEN, "APPROVER_SLACK_SIGNING_SECRET": SECRET,
      "APPROVER_SLACK_CHANNEL": "#reviewers"}, "channel id"),
    ({"APPROVER_SLACK_USERS": "U0A=admin"}, "SLACK_USER_ID=way:name"),
    ({"APPROVER_SLACK_USERS": "U0A=proxy"}, "SLACK_USER_ID=way:name"),
])
def test_bad_slack_settings_fail_at_start(env, message):
    with pytest.raises(ConfigError, match=message):
        config.from_env(env)


def test_slack_settings_are_read(settings):
    read = config.from_env({"APPROVER_SLACK_BOT_TOKEN": TOKEN,
                            "APPROVER_SLACK_SIGNING_SECRET": SECRET,
                            "APPROVER_SLACK_CHANNEL": CHANNEL,
                            "APPROVER_SLACK_USERS": f"{MAPPED}=local:alice",
                            "APPROVER_SLACK_API_URL": "http://127.0.0.1:9/api/"})
    assert (read.slack_api_url, read.slack_users) == ("http://127.0.0.1:9/api",
                                                      ((MAPPED, "local:alice"),))
    assert TOKEN not in repr(read) and SECRET not in repr(read)
    assert TOKEN in read.secret_values() and SECRET in read.secret_values()
    assert config.from_env({}).slack_api_url == "https://slack.com/api"
