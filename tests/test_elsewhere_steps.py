"""Mail links and Slack buttons on requests with steps: held to the steps as the console is
(pipeline.steps: the current step's group, four eyes, an approval that only counts)."""

import pytest

from approver.state import accounts
from tests import test_action_links as links_test
from tests import test_slack as slack_test
from tests.conftest import run_jobs, serving
from tests.console_support import PASSWORD, csrf, sign_in
from tests.rules_support import write
from tests.slack_fake import CHANNEL, TOKEN, click
from tests.test_action_links import ADMINS, form_of
from tests.test_review import in_review
from tests.test_steps import OWNERS

smtp, send_mail = links_test.smtp, links_test.send_mail
fake_slack, slack, notify_jobs, posted = (slack_test.fake_slack, slack_test.slack,
                                          slack_test.notify_jobs, slack_test.posted)
SAM, MIA = "U0SAM0001", "U0MIA0001"


@pytest.fixture
def settings(settings, tmp_path, smtp, fake_slack):
    return settings.with_(
        rules_path=write(tmp_path / "rules" / "owners.yaml", OWNERS), admins_group="api-admins",
        smtp_url=smtp.url, mail_from="api@example.com", mail_on=("review",), mail_admins=ADMINS,
        public_url="https://approver.example.com", slack_api_url=fake_slack.url,
        slack_bot_token=TOKEN, slack_signing_secret=slack_test.SECRET, slack_channel=CHANNEL,
        slack_users=((SAM, "local:sam"), (MIA, "local:mia")))


@pytest.fixture
def people(rt):
    accounts.add(rt.store, "sam", PASSWORD, "sam@corp.example", ("security", "owners"))
    accounts.add(rt.store, "mia", PASSWORD, "mia@corp.example", ("marketing",))
    accounts.add(rt.store, ADMINS[0], PASSWORD, ADMINS[0], ("security",))


def test_an_address_in_no_group_cannot_decide_a_step_by_its_link(rt, sandbox, smtp, send_mail,
                                                                   app, people):
    ref = in_review(rt, sandbox)
    send_mail()
    path = links_test.mailed_links(smtp)[ADMINS[1]]["approve"]
    page = app.test_client().get(path)
    assert page.status_code == 403 and b"current step is 1 of security" in page.data
    assert rt.store.claim_of(ref) is None


def test_a_members_link_counts_their_approval_toward_the_step(rt, sandbox, smtp, send_mail,
                                                               settings, people):
    from approver.web import create_app

    ref = in_review(rt, sandbox)
    send_mail()
    path = links_test.mailed_links(smtp)[ADMINS[0]]["approve"]
    client = create_app(settings.with_(action_link_sign_in=True)).test_client()
    assert sign_in(client, ADMINS[0]).status_code == 303  # the account named by the address
    page = client.get(path).data.decode()
    done = client.post("/console/act", data={**form_of(page), "csrf_token": csrf(page),
                                             "outcome": "approve"})
    assert done.status_code == 200 and b"waits for its remaining steps" in done.data
    assert rt.store.claim_of(ref) is None  # counted toward the security step, nothing applied
    steps = [e for e in rt.store.entries(20) if e["event"] == "step_approved"]
    assert (steps[0]["by"], steps[0]["via"]) == (f"local:{ADMINS[0]}", "email")
    assert client.get(path).status_code == 410  # used


def test_slack_clicks_are_held_to_the_steps(rt, sandbox, posted, slack, notify_jobs, people,
                                            app):
    ref, ts = posted
    with serving(app) as url:
        for user in (MIA, SAM):
            answer = slack_test.send(url + "/hooks/slack/interactive",
                                     click("approve", ref, user, ts, action_ts=user))
            assert answer.status_code == 200
    notify_jobs()
    told = {t["user"]: t["text"] for t in slack.called("chat.postEphemeral")}
    assert "not in security" in told[MIA] and "waits for its remaining steps" in told[SAM]
    counted = [e for e in rt.store.entries(20) if e["event"] == "step_approved"]
    assert [(e["by"], e["via"]) for e in counted] == [("local:sam", "slack")]
    run_jobs(rt.redis, rt.queue)
    assert rt.store.claim_of(ref) is None  # sam's approval passed security; owners remain


@pytest.fixture
def with_deadlines(rt, settings, tmp_path):
    from tests.test_deadlines import GROUPS, RULES

    folder = tmp_path / "deadline-rules"
    write(folder / "owners.yaml", RULES)
    write(folder / "groups.yaml", GROUPS)
    rt.settings = settings.with_(rules_path=folder)
    rt.__dict__.pop("rules", None)  # load the rules just written
    return rt


def test_reminders_go_in_the_thread_and_the_digest_to_the_channel(with_deadlines, sandbox,
                                                                   slack, notify_jobs):
    from approver import state as st
    from approver.pipeline import deadlines

    rt = with_deadlines
    ref = in_review(rt, sandbox, fields={"company": "<!channel> Co"})
    notify_jobs()
    [(_, ts)] = list(slack.messages)
    since = rt.redis.zscore(st.INBOX_KEY, ref)
    done = deadlines.run(rt, now=since + 5 * 3600)
    assert (done["reminded"], done["digests"]) == (1, 1)
    notify_jobs()
    posts = slack.called("chat.postMessage")
    [reminder] = [p for p in posts if p.get("thread_ts") == ts]
    assert reminder["text"].startswith("Reminded: waited 5 hours at 1 of security")
    [digest] = [p for p in posts if p["text"].endswith("wait for security")]
    shown = str(digest["blocks"])
    assert ref in shown and "https://approver.example.com/console/requests/" in shown
    assert "<!channel>" not in shown
    # An hour later, within the same UTC day (the digest is daily): reminded once.
    later = min(since + 6 * 3600, (since + 5 * 3600) // 86400 * 86400 + 86399)
    assert deadlines.run(rt, now=later)["reminded"] == 0
    notify_jobs()
    assert len(slack.called("chat.postMessage")) == len(posts)


SECURITY_CHANNEL = "C0SECURE1"


def test_a_groups_own_channel_gets_its_requests_reminders_and_digest(with_deadlines, sandbox,
                                                                     slack, notify_jobs, app,
                                                                     people, tmp_path):
    from approver import state as st
    from approver.pipeline import deadlines
    from tests.test_deadlines import GROUPS

    rt = with_deadlines
    write(rt.settings.rules_path / "groups.yaml", GROUPS.replace(
        "security: {email: security@corp.example}",
        f"security: {{email: security@corp.example, slack: {SECURITY_CHANNEL}}}"))
    slack.channels.add(SECURITY_CHANNEL)
    ref = in_review(rt, sandbox)  # its first step is security's
    notify_jobs()
    [(channel, ts)] = list(slack.messages)
    assert channel == SECURITY_CHANNEL
    since = rt.redis.zscore(st.INBOX_KEY, ref)
    assert deadlines.run(rt, now=since + 5 * 3600)["reminded"] == 1
    notify_jobs()
    posts = slack.called("chat.postMessage")
    [reminder] = [p for p in posts if p.get("thread_ts") == ts]
    assert reminder["channel"] == SECURITY_CHANNEL
    [digest] = [p for p in posts if p["text"].endswith("wait for security")]
    assert digest["channel"] == SECURITY_CHANNEL
    # A member's click in the group's channel counts, answered privately there.
    with serving(app) as url:
        answer = slack_test.send(url + "/hooks/slack/interactive",
                                 click("approve", ref, SAM, ts, channel=SECURITY_CHANNEL))
        assert answer.status_code == 200
    notify_jobs()
    [told] = slack.called("chat.postEphemeral")
    assert told["channel"] == SECURITY_CHANNEL and "remaining steps" in told["text"]


def test_a_request_whose_group_has_no_channel_goes_to_the_reviewers(with_deadlines, sandbox,
                                                                   slack, notify_jobs):
    ref = in_review(with_deadlines, sandbox)  # security has an email only
    notify_jobs()
    assert [c for c, _ in slack.messages] == [CHANNEL]
    [message] = slack.messages.values()
    assert ref in str(message["blocks"])


def test_a_reminder_mail_carries_each_members_own_links_and_one_decides_the_step_once(
        with_deadlines, sandbox, smtp, send_mail, people, app):
    import requests

    from approver import state as st
    from approver.pipeline import deadlines, steps
    from tests.test_mail import parts

    rt = with_deadlines
    ref = in_review(rt, sandbox)
    send_mail()
    smtp.messages.clear()  # the admins' mails about the new request
    deadlines.run(rt, now=rt.redis.zscore(st.INBOX_KEY, ref) + 5 * 3600)
    send_mail()
    reminders = {r[0]: parts(m)[0] for r, m in smtp.messages
                 if m["Subject"].startswith("Reminder")}
    # The group's address (a shared mailbox) has no links; each member in security who may
    # decide has their own; mia is in no such group.
    assert set(reminders) == {"security@corp.example", "sam@corp.example", ADMINS[0]}
    assert "/console/act/" not in reminders["security@corp.example"]
    sams = dict((o, p) for p, o in links_test.LINK.findall(reminders["sam@corp.example"]))
    theirs = links_test.LINK.findall(reminders[ADMINS[0]])
    assert set(sams) == {"approve", "deny"} and sams["approve"] not in str(theirs)
    with serving(app) as web:
        tab = requests.Session()
        page = tab.get(web + sams["approve"], timeout=5)
        assert page.status_code == 200
        done = tab.post(web + "/console/act", data={**form_of(page.text),
                                                    "outcome": "approve"}, timeout=5)
        assert done.status_code == 200 and "waits for its remaining steps" in done.text
        again = requests.get(web + sams["approve"], timeout=5)
        assert again.status_code == 410 and "was used at" in again.text
        # The other member's link was for the security step, which has passed.
        other = requests.get(web + theirs[0][0], timeout=5)
        assert other.status_code == 410 and "step it was sent for has been decided" in other.text
    now = steps.standing(rt.store, ref, rt.store.state(ref))
    assert now["current"] == 1 and now["steps"][0]["approved_by"] == ["local:sam"]
    [approved] = [e for e in rt.store.entries(50, request_id=ref) if e["event"] == "step_approved"]
    assert (approved["by"], approved["via"]) == ("local:sam", "email")


def test_a_request_moving_on_to_a_group_with_its_own_channel_is_posted_there(
        with_deadlines, sandbox, slack, notify_jobs, app, people):
    from approver import state as st
    from approver.pipeline import deadlines, decide
    from tests.test_deadlines import GROUPS

    rt = with_deadlines
    owners = "C0OWNERS1"
    write(rt.settings.rules_path / "groups.yaml", GROUPS.replace(
        "owners: {email: owners@corp.example}",
        f"owners: {{email: owners@corp.example, slack: {owners}}}"))
    slack.channels.add(owners)
    ref = in_review(rt, sandbox)  # security first: it has no channel of its own
    notify_jobs()
    [(first, ts)] = list(slack.messages)
    assert first == CHANNEL
    since = rt.redis.zscore(st.INBOX_KEY, ref)
    assert deadlines.run(rt, now=since + 60)["reminded"] == 0
    notify_jobs()
    assert [k for k, m in slack.messages.items() if "awaits a decision" in m["text"]] == [
        (CHANNEL, ts)]  # still at security's step: no other post (the day's digest aside)
    with serving(app) as url:  # sam passes the security step from the reviewers' channel
        slack_test.send(url + "/hooks/slack/interactive", click("approve", ref, SAM, ts))
    notify_jobs()
    deadlines.run(rt, now=since + 120)  # the watchdog's pass sees the owners' step reached
    deadlines.run(rt, now=since + 180)  # and the next: posted there once
    notify_jobs()
    [(_, owners_ts)] = [k for k, m in slack.messages.items()
                        if k[0] == owners and "awaits a decision" in m["text"]]
    assert ref in str(slack.messages[(owners, owners_ts)]["blocks"])
    deadlines.run(rt, now=since + 5 * 3600)  # the reminder: in the newest message's thread
    notify_jobs()
    [reminder] = [p for p in slack.called("chat.postMessage") if p.get("thread_ts")]
    assert (reminder["channel"], reminder["thread_ts"]) == (owners, owners_ts)
    decide.decide_by_person(rt, ref, "deny", "not now", "local:ada", "console")
    notify_jobs()
    for where in ((CHANNEL, ts), (owners, owners_ts)):  # both say it is decided
        assert slack_test.actions_of(slack.messages[where]) == []
        assert "*Denied*" in slack_test.text_of(slack.messages[where])


ONE_STEP = """\
version: 1
rules:
  - id: security-decides
    then: review
    reason: Security decides.
    approvals:
      - group: security
"""
ROUNDS = 20


def _at_once(mail, slack_side) -> tuple:
    """Run both, released together by a barrier: `mail` in a thread, `slack_side` in this
    one (RQ's worker wants the main thread); their answers."""
    import threading

    start, answers = threading.Barrier(2), {}

    def by_mail():
        start.wait()
        answers["mail"] = mail()

    thread = threading.Thread(target=by_mail)
    thread.start()
    start.wait()
    answers["slack"] = slack_side()
    thread.join()
    return answers["mail"], answers["slack"]


def test_a_mail_approve_and_a_slack_deny_of_one_step_at_once_decide_it_once(
        rt, settings, sandbox, smtp, send_mail, slack, notify_jobs, work, people, tmp_path):
    """Even rounds: the two arrive at once (the link's form decides on arrival, the
    submission is queued and its job run as it lands). Odd rounds: the submission arrived
    just before, and its job runs as the link's form arrives."""
    import json
    from functools import partial

    import requests

    from approver import state as st
    from approver.pipeline import slackapp
    from approver.web import create_app
    from tests.slack_fake import submission
    from tests.test_review import APPROVE

    rt.settings = settings.with_(rules_path=write(tmp_path / "one" / "step.yaml", ONE_STEP),
                                 action_link_sign_in=True)
    rt.__dict__.pop("rules", None)  # load the rules just written
    tyk, won = sandbox.app.sandbox, {"approve": 0, "deny": 0}

    def plain(answer):  # a browser sends its Secure cookies to 127.0.0.1; requests would not
        for cookie in tab.cookies:
            cookie.secure = False
        return answer

    def submitted(modal):
        answer = slack_test.send(hook, modal)
        notify_jobs()  # the submission's job
        return answer

    with serving(create_app(rt.settings)) as web, requests.Session() as tab:
        hook = web + "/hooks/slack/interactive"
        login = plain(tab.get(web + "/console/login", timeout=5))
        assert plain(tab.post(web + "/console/login", timeout=5, data={
            "csrf_token": csrf(login.text), "name": ADMINS[0], "password": PASSWORD},
            allow_redirects=False)).status_code == 303  # in security, the mail's address
        for round_ in range(ROUNDS):
            smtp.messages.clear()
            ref = in_review(rt, sandbox)
            send_mail()  # the admins' mails, and the post to the channel
            page = plain(tab.get(web + links_test.mailed_links(smtp)[ADMINS[0]]["approve"],
                                 timeout=5))
            assert page.status_code == 200, page.text
            form = {**form_of(page.text), "csrf_token": csrf(page.text), "outcome": "approve"}
            ts = json.loads(rt.redis.get(slackapp.MESSAGE_KEY + ref))["ts"]
            assert slack_test.send(hook, click("deny", ref, SAM, ts, action_ts=f"{round_}.1")
                                   ).status_code == 200  # the deny modal opens
            modal = submission(slack.called("views.open")[-1]["view"], SAM, "not for us")
            modal["view"]["id"] = f"V{round_:08d}"  # each modal Slack opens is its own
            slack.calls.clear()
            decide_by_mail = partial(tab.post, web + "/console/act", data=form, timeout=10)
            if round_ % 2:
                assert slack_test.send(hook, modal).status_code == 200
                mailed, _ = _at_once(decide_by_mail, notify_jobs)
            else:
                mailed, clicked = _at_once(decide_by_mail, partial(submitted, modal))
                assert clicked.status_code == 200
            work()
            notify_jobs()
            assert mailed.status_code < 500, mailed.text
            state = rt.store.state(ref)
            told = [t["text"] for t in slack.called("chat.postEphemeral") if t["user"] == SAM]
            if state["outcome"] == "approve":
                assert mailed.status_code == 200 and "carried out" in mailed.text
                assert (state["decided_by"], state["via"]) == (f"local:{ADMINS[0]}", "email")
                assert len(told) == 1 and told[0].startswith("Nothing was done"), told
            else:
                assert mailed.status_code == 409 and "deciding it" in mailed.text, mailed.text
                assert (state["decided_by"], state["via"]) == ("local:sam", "slack")
                assert told == []
            won[state["outcome"]] += 1
            assert state["state"] == st.APPLIED
            approved = tyk.calls(method="PUT", path=APPROVE + ref)
            deleted = [c for c in tyk.calls(method="DELETE") if ref in c["path"]]
            assert (len(approved), len(deleted)) == (
                (1, 0) if state["outcome"] == "approve" else (0, 1))
            logged = rt.store.entries(100, request_id=ref)
            events = [e["event"] for e in logged]
            assert events.count("claimed") == 1 and events.count("claim_refused") == 1, events
            assert [(e["outcome"], e["decided_by"]) for e in logged if e["event"] == "decided"
                    and e["rule"] == "person"] == [(state["outcome"], state["decided_by"])]
            assert [e["outcome"] for e in logged if e["event"] == "applied"] == [
                state["outcome"]]
            assert events.count("step_approved") == (state["outcome"] == "approve"), events
    assert sum(won.values()) == ROUNDS, won
