"""Deadlines of requests with steps: a reminder and an escalation sent once each (also
after a restart), an expiry that denies once and tells the developer in plain words, a
daily digest per group; group contacts checked at file:line."""

import subprocess
import sys
import time

import pytest

from approver import state as st
from approver.pipeline import deadlines, runtime, steps
from approver.rules import check
from approver.state import accounts
from tests.conftest import stop_process, wait_for
from tests.console_support import PASSWORD
from tests.rules_support import write
from tests.test_mail import SENDER, parts, send_mail, smtp  # noqa: F401 (fixtures)
from tests.test_review import APPROVE, CAROL, in_review
from tests.test_steps import OWNERS

RULES = OWNERS + """\
    deadline: {remind_after: 4h, escalate_after: 1d, escalate_to: api-leads,
               expire_after: 14d, on_expire: deny}
"""
GROUPS = """\
groups:
  security: {email: security@corp.example}
  api-leads: {email: leads@corp.example}
  owners: {email: owners@corp.example}
"""
HOUR = 3600


@pytest.fixture
def settings(settings, smtp, tmp_path):  # noqa: F811
    folder = tmp_path / "rules"
    write(folder / "owners.yaml", RULES)
    write(folder / "groups.yaml", GROUPS)
    return settings.with_(rules_path=folder, smtp_url=smtp.url, mail_from=SENDER,
                          mail_on=("deny",), public_url="https://approver.example.com")


def entered(rt, ref) -> float:
    return rt.redis.zscore(st.INBOX_KEY, ref)


def events(rt, ref, *names):
    return [e for e in reversed(rt.store.entries(100, request_id=ref)) if e["event"] in names]


def test_a_reminder_and_an_escalation_are_sent_once_each_even_after_a_restart(
        rt, sandbox, smtp, send_mail, settings):  # noqa: F811
    ref = in_review(rt, sandbox)
    since = entered(rt, ref)
    assert deadlines.run(rt, now=since + HOUR)["reminded"] == 0
    assert deadlines.run(rt, now=since + 5 * HOUR)["reminded"] == 1
    assert deadlines.run(rt, now=since + 6 * HOUR)["reminded"] == 0
    assert deadlines.run(rt, now=since + 25 * HOUR)["escalated"] == 1
    # A new process (a worker restarted): what was done is in Redis, not in memory.
    restarted = runtime.Runtime(settings)
    passed = deadlines.run(restarted, now=since + 26 * HOUR)
    assert (passed["reminded"], passed["escalated"], passed["expired"]) == (0, 0, 0)
    [reminded] = events(rt, ref, "reminded")
    [escalated] = events(rt, ref, "escalated")
    assert (reminded["group"], reminded["by"], reminded["step"]) == (
        "security", "deadline", "1 of security")
    assert escalated["group"] == "api-leads"
    send_mail()
    to = sorted(r[0] for r, m in smtp.messages
                if m["Subject"].startswith(("Reminder", "Escalated")))
    assert to == ["leads@corp.example", "security@corp.example"]
    escalation = next(m for r, m in smtp.messages if r == ["leads@corp.example"])
    assert f"Escalated to api-leads: key request {ref}" in escalation["Subject"]
    assert "any of you may decide it now" in parts(escalation)[0]


def test_after_escalation_the_escalation_group_may_decide(rt, sandbox):
    ref = in_review(rt, sandbox)
    lead = steps.Person("local:lee", ("api-leads",), "lee@corp.example")
    request = {**rt.store.state(ref)}
    request["standing"] = steps.standing(rt.store, ref, request)
    assert "not in security" in steps.may_decide(lead, request)
    deadlines.run(rt, now=entered(rt, ref) + 25 * HOUR)
    request["standing"] = steps.standing(rt.store, ref, request)
    assert steps.may_decide(lead, request) is None


def test_an_expiry_denies_once_and_tells_the_developer_in_plain_words(
        rt, sandbox, work, smtp, send_mail):  # noqa: F811
    ref = in_review(rt, sandbox)
    since = entered(rt, ref)
    assert deadlines.run(rt, now=since + 15 * 86400)["expired"] == 1
    assert deadlines.run(rt, now=since + 15 * 86400)["expired"] == 0  # claimed already
    work()
    state = rt.store.state(ref)
    assert (state["state"], state["outcome"], state["decided_by"]) == (
        st.APPLIED, "deny", "deadline")
    assert sandbox.app.sandbox.calls(method="PUT", path=APPROVE + ref) == []
    assert deadlines.run(rt, now=since + 16 * 86400)["expired"] == 0  # left the inbox
    [expired] = events(rt, ref, "expired")
    assert (expired["outcome"], expired["via"]) == ("deny", "deadline")
    send_mail()
    [message] = [m for r, m in smtp.messages if r == [CAROL]]
    text = parts(message)[0]
    assert "Nobody decided your request within 14 days, so it was closed without " \
        "access. You may ask again." in text


def test_an_expiry_to_review_leaves_the_request_to_the_admins(rt, sandbox, settings,
                                                              tmp_path):
    write(tmp_path / "rules" / "owners.yaml", RULES.replace("on_expire: deny",
                                                             "on_expire: review"))
    rt.settings = settings.with_(admins_group="api-admins")
    rt.__dict__.pop("rules", None)
    ref = in_review(rt, sandbox)
    assert deadlines.run(rt, now=entered(rt, ref) + 15 * 86400)["expired"] == 1
    assert rt.store.state(ref)["state"] == st.IN_REVIEW
    request = {**rt.store.state(ref)}
    request["standing"] = steps.standing(rt.store, ref, request)
    owner = steps.Person("local:sam", ("security",), "sam@corp.example")
    admin = steps.Person("local:ada", ("api-admins",), "ada@corp.example")
    assert "only api-admins decides it now" in steps.may_decide(owner, request, "api-admins")
    assert steps.may_decide(admin, request, "api-admins") is None


def test_each_group_gets_one_digest_a_day_oldest_first(
        rt, sandbox, smtp, send_mail):  # noqa: F811
    first = in_review(rt, sandbox)
    second = in_review(rt, sandbox, email="dave@example.com")
    rt.redis.zadd(st.INBOX_KEY, {first: time.time() - 3 * 86400})  # waited longest
    accounts.add(rt.store, "sam", PASSWORD, "sam@corp.example", ("security",))
    now = time.time()
    assert deadlines.run(rt, now=now)["digests"] == 1
    assert deadlines.run(rt, now=now)["digests"] == 0  # once a day
    send_mail()
    [(recipients, digest)] = [(r, m) for r, m in smtp.messages
                              if "wait for security" in m["Subject"]]
    assert recipients == ["security@corp.example"]
    text = parts(digest)[0]
    assert digest["Subject"] == "2 key requests wait for security"
    assert text.index(first) < text.index(second)


def test_group_contacts_are_checked_at_their_line(tmp_path):
    folder = tmp_path / "rules"
    write(folder / "owners.yaml", RULES)
    write(folder / "groups.yaml", """\
        groups:
          security: {email: security@corp.example}
          owners: {email: "not an address"}
          bad group: {email: a@corp.example}
          leads: {mail: leads@corp.example}
          ops: {slack: "#ops"}
          sre: {slack: C0SRE0001}
        """)
    problems = {p.line: p.message for p in check(folder)}
    assert "is not one email address" in problems[3]
    assert "not a usable group name" in problems[4]
    assert "unexpected key 'mail'" in problems[5]
    assert "'#ops' is not a Slack channel id" in problems[6]
    assert 7 not in problems  # a Slack channel alone is a contact
    assert all(p.file.endswith("groups.yaml") for p in check(folder))


def start_worker(log_path):
    log = log_path.open("w")
    return subprocess.Popen([sys.executable, "-m", "approver", "worker"], stdout=log,
                            stderr=subprocess.STDOUT), log


def stop_worker(proc, log) -> None:
    stop_process(proc)
    log.close()


@pytest.mark.slow
def test_real_workers_remind_and_escalate_once_across_a_restart(rt, sandbox, env,
                                                                monkeypatch, tmp_path):
    monkeypatch.setenv("APPROVER_RECONCILE_INTERVAL", "1")
    ref = in_review(rt, sandbox)
    rt.redis.zadd(st.INBOX_KEY, {ref: time.time() - 25 * HOUR})  # past both marks
    proc, log = start_worker(tmp_path / "first.log")
    try:
        wait_for(lambda: events(rt, ref, "reminded") and events(rt, ref, "escalated"), 60)
    finally:
        stop_worker(proc, log)
    # Another request, due for its reminder only now: its reminder shows that the restarted
    # worker's passes ran, and ran over the first request too.
    later = in_review(rt, sandbox, email="dave@example.com")
    rt.redis.zadd(st.INBOX_KEY, {later: time.time() - 5 * HOUR})
    proc, log = start_worker(tmp_path / "second.log")
    try:
        wait_for(lambda: events(rt, later, "reminded"), 60)
    finally:
        stop_worker(proc, log)
    assert len(events(rt, ref, "reminded")) == 1
    assert len(events(rt, ref, "escalated")) == 1
    assert events(rt, later, "escalated") == []
