"""Deciding from a mail and from Slack on the processes as shipped: `approver web` under
gunicorn, a real `approver worker`, Redis, the sandbox Dashboard, an SMTP server and the
fake Slack API (tests/slack_fake.py)."""

import json
import re

import pytest
import requests

from approver import state as st
from tests import test_mail
from tests.conftest import serving, wait_for
from tests.slack_fake import CHANNEL, TOKEN, FakeSlack, click, form, sign
from tests.test_action_links import ADMINS, HIDDEN, LINK
from tests.test_mail import parts
from tests.test_review import in_review
from tests.web_support import Web

SECRET = "slack-signing-secret-for-processes-0123"
MEMBER = "U0MEMBER1"
smtp = test_mail.smtp  # the real SMTP server's fixture


@pytest.fixture(scope="module")
def fake_slack():
    fake = FakeSlack()
    fake.add_user(MEMBER, ADMINS[0])
    with serving(fake.app) as url:
        fake.url = url + "/api"
        yield fake


@pytest.fixture
def shipped(settings, fake_slack, smtp):
    """The settings of the web tier and of the worker: mail to the admins, the Slack app."""
    return {"APPROVER_SMTP_URL": smtp.url, "APPROVER_MAIL_FROM": "api@example.com",
            "APPROVER_MAIL_ON": "deny", "APPROVER_MAIL_ADMINS": ",".join(ADMINS),
            "APPROVER_PUBLIC_URL": "https://approver.example.com",
            "APPROVER_SLACK_API_URL": fake_slack.url, "APPROVER_SLACK_BOT_TOKEN": TOKEN,
            "APPROVER_SLACK_SIGNING_SECRET": SECRET, "APPROVER_SLACK_CHANNEL": CHANNEL}


@pytest.fixture
def settings(settings, fake_slack, smtp):
    """This process decides the request (and queues what it calls for) as a worker would."""
    return settings.with_(smtp_url=smtp.url, mail_from="api@example.com", mail_on=("deny",),
                          mail_admins=ADMINS, public_url="https://approver.example.com",
                          slack_api_url=fake_slack.url, slack_bot_token=TOKEN,
                          slack_signing_secret=SECRET, slack_channel=CHANNEL)


@pytest.fixture
def env(env, shipped, monkeypatch):
    """The worker process's environment, with `shipped`."""
    for name, value in shipped.items():
        monkeypatch.setenv(name, value)
    return {**env, **shipped}


@pytest.fixture
def web(settings, shipped, tmp_path):
    server = Web(settings, tmp_path, **shipped).start()
    yield server
    server.stop()


def test_a_mails_link_on_the_shipped_processes(rt, sandbox, smtp, web, worker_process):
    ref = in_review(rt, sandbox)
    mail = wait_for(lambda: next((m for r, m in smtp.messages if r == [ADMINS[0]]), None))
    path = dict((o, p) for p, o in LINK.findall(parts(mail)[0]))["approve"]
    token = path.rpartition("/")[2]
    with requests.Session() as browser:
        for _ in range(2):  # a mail scanner, then the person
            page = browser.get(web.url + path, timeout=5)
            assert page.status_code == 200
        assert rt.store.claim_of(ref) is None
        form_ = dict(HIDDEN.findall(page.text))
        done = browser.post(web.url + "/console/act", timeout=5,
                            data={**form_, "outcome": "approve", "reason": "partner"})
        assert done.status_code == 200
        wait_for(lambda: (rt.store.state(ref) or {}).get("state") == st.APPLIED)
        assert rt.store.state(ref)["decided_by"] == f"email:{ADMINS[0]}"
        assert browser.get(web.url + path, timeout=5).status_code == 410
    assert sandbox.app.sandbox.get_key_request(ref)["approved"] is True
    logged = web.output() + worker_process.read_text()
    assert token not in logged and "/console/act/[redacted]" in logged


def test_a_slack_click_on_the_shipped_processes(rt, sandbox, fake_slack, web, worker_process):
    fake_slack.calls.clear()
    ref = in_review(rt, sandbox)
    ts = wait_for(lambda: next((t for c, t in fake_slack.messages
                                if any(ref in json.dumps(b) for b in
                                       fake_slack.messages[(c, t)]["blocks"])), None))
    hook = web.url + "/hooks/slack/interactive"
    body = form(click("approve", ref, MEMBER, ts))
    unsigned = requests.post(hook, data=body, timeout=5,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert unsigned.status_code == 401
    assert requests.post(hook, data=body, headers=sign(SECRET, body), timeout=5).status_code \
        == 200
    wait_for(lambda: (rt.store.state(ref) or {}).get("state") == st.APPLIED)
    assert rt.store.state(ref)["via"] == "slack"
    updated = wait_for(lambda: not any(
        b["type"] == "actions" for b in fake_slack.messages[(CHANNEL, ts)]["blocks"]))
    assert updated and re.search(r"\*Approved\* by `email:reviewers@example\.com` via slack",
                                 json.dumps(fake_slack.messages[(CHANNEL, ts)]["blocks"]))
    assert TOKEN not in web.output() + worker_process.read_text()
