"""Outside approvers (a step's `email:`, no account): mailed their own Approve and Deny
links when the request reaches their step, through a real SMTP server, the web app served
over HTTP, Redis, the sandbox Dashboard and a worker running the jobs."""

import re
from html import unescape

import pytest
import requests

from approver import state as st
from approver.pipeline import review, steps
from approver.rules import Facts, check, evaluate, load_rules
from approver.rules.explain import render
from approver.state import accounts
from tests import test_mail
from tests.conftest import serving
from tests.console_support import PASSWORD
from tests.rules_support import write
from tests.test_action_links import form_of
from tests.test_mail import parts
from tests.test_review import in_review

LEGAL = "legal@partner.example"
CAROL = "carol@gmail.com"
RULES = """\
version: 1
rules:
  - id: partner-then-security
    then: review
    reason: The partner's legal team, then security.
    approvals:
      - email: {address}
      - group: security
"""
LINK = re.compile(r"https://approver\.example\.com(/console/act/[A-Za-z0-9_-]+)\?outcome=(\w+)")
smtp, send_mail = test_mail.smtp, test_mail.send_mail


@pytest.fixture
def settings(settings, tmp_path, smtp):
    return settings.with_(
        rules_path=write(tmp_path / "rules" / "partner.yaml", RULES.format(address=LEGAL)),
        admins_group="api-admins", smtp_url=smtp.url, mail_from="api@example.com",
        mail_on=(), public_url="https://approver.example.com")


@pytest.fixture
def web(app):
    with serving(app) as url:
        yield url


@pytest.fixture
def mailed(rt, sandbox, smtp, send_mail):
    """A request at its outside approver's step, and the links mailed to that address."""
    ref = in_review(rt, sandbox)
    send_mail()
    [(recipients, message)] = smtp.messages
    assert recipients == [LEGAL] and message["To"] == LEGAL
    text, html = parts(message)
    assert "The partner's legal team" in text and CAROL in text
    assert LINK.findall(text) == LINK.findall(unescape(html))
    return ref, {outcome: path for path, outcome in LINK.findall(text)}


def decide_with(web, path, outcome, reason=""):
    tab = requests.Session()
    page = tab.get(web + path, timeout=5)
    assert page.status_code == 200, page.text
    return tab.post(web + "/console/act", data={**form_of(page.text), "outcome": outcome,
                                                 "reason": reason}, timeout=5)


def events(rt, ref, name):
    return [e for e in rt.store.entries(50, request_id=ref) if e["event"] == name]


def test_the_address_is_mailed_and_its_approval_passes_the_step_once(
        rt, sandbox, mailed, web, work, smtp):
    ref, links = mailed
    for path in links.values():  # a mail scanner follows every link: nothing happens
        assert requests.get(web + path, timeout=5).status_code == 200
    work()
    assert steps.standing(rt.store, ref, rt.store.state(ref))["current"] == 0
    done = decide_with(web, links["approve"], "approve", "contract signed")
    assert done.status_code == 200 and "waits for its remaining steps" in done.text
    now = steps.standing(rt.store, ref, rt.store.state(ref))
    assert now["current"] == 1 and now["steps"][0]["approved_by"] == [f"email:{LEGAL}"]
    assert now["steps"][1]["left"] == "0 of 1 security"
    [approved] = events(rt, ref, "step_approved")
    assert (approved["by"], approved["via"]) == (f"email:{LEGAL}", "email")
    # The same link again (approve or deny: one token): used.
    for path in links.values():
        again = requests.get(web + path, timeout=5)
        assert again.status_code == 410 and "was used at" in again.text
    # The next step is security's: one of its members decides the rest.
    accounts.add(rt.store, "sam", PASSWORD, "sam@corp.example", ("security",))
    sam = steps.Person("local:sam", ("security",), "sam@corp.example")
    taken = steps.act(rt.store, ref, "approve", "", sam, "console", "test", "api-admins")
    review.enqueue_claim(rt.queue, ref, taken, rt.settings.retry_delays)
    work()
    state = rt.store.state(ref)
    assert (state["state"], state["outcome"], state["decided_by"]) == (
        st.APPLIED, "approve", "local:sam")
    assert len(smtp.messages) == 1  # mailed once


def test_the_addresss_deny_ends_the_request(rt, sandbox, mailed, web, work):
    ref, links = mailed
    done = decide_with(web, links["deny"], "deny", "no contract with this company")
    assert done.status_code == 200
    work()
    state = rt.store.state(ref)
    assert (state["state"], state["outcome"], state["decided_by"], state["via"]) == (
        st.APPLIED, "deny", f"email:{LEGAL}", "email")
    assert (sandbox.app.sandbox.get_key_request(ref) or {}).get("approved") is not True
    refused = requests.get(web + links["approve"], timeout=5)
    assert refused.status_code == 410 and "was used at" in refused.text


def test_an_override_of_the_step_kills_the_addresss_links(rt, sandbox, mailed, web):
    ref, links = mailed
    ada = steps.Person("local:ada", ("api-admins",), "ada@corp.example")
    assert steps.act(rt.store, ref, "approve", "agreed by phone", ada, "console", "test",
                     "api-admins") is None
    gone = requests.get(web + links["approve"], timeout=5)
    assert gone.status_code == 410 and "step it was sent for has been decided" in gone.text
    assert [e["by"] for e in events(rt, ref, "link_refused")] == [f"email:{LEGAL}"]


def test_the_address_may_not_decide_for_its_own_request(rt, sandbox, smtp, send_mail, web,
                                                        settings, tmp_path):
    rt.settings = settings.with_(rules_path=write(tmp_path / "own" / "r.yaml",
                                                  RULES.format(address=CAROL)))
    rt.__dict__.pop("rules", None)
    ref = in_review(rt, sandbox)  # carol's own request, her address the outside step
    send_mail()
    [(_, message)] = smtp.messages
    path = LINK.findall(parts(message)[0])[0][0]
    refused = requests.get(web + path, timeout=5)
    assert refused.status_code == 403 and "own email address" in refused.text
    assert rt.store.claim_of(ref) is None


def test_outside_links_need_no_console_sign_in(rt, sandbox, mailed, settings):
    from approver.web import create_app

    _, links = mailed
    client = create_app(settings.with_(action_link_sign_in=True)).test_client()
    page = client.get(links["approve"])
    assert page.status_code == 200 and LEGAL.encode() in page.data


def test_rules_check_reports_bad_email_steps_at_their_line(tmp_path):
    path = write(tmp_path / "r.yaml", """\
        version: 1
        rules:
          - id: a
            then: review
            approvals:
              - email: not-an-address
              - {email: legal@partner.example, count: 2}
              - {email: legal@partner.example, group: security}
              - email: "a@b.example, c@d.example"
        """)
    found = {p.line: p.message for p in check(path)}
    assert "'not-an-address' is not one email address" in found[6]
    assert "count: is for a group's step" in found[7]
    assert "exactly one of them" in found[8]
    assert "is not one email address" in found[9]
    good = write(tmp_path / "ok.yaml", RULES.format(address=LEGAL))
    assert check(good) == []
    decision = evaluate(load_rules(good), Facts.from_values({}))
    assert "step 1:   email legal@partner.example\nstep 2:   1 of security" in render(decision)


def test_an_admins_reminder_link_overrides_the_step_only_with_a_reason(
        rt, sandbox, smtp, send_mail, web, settings, tmp_path):
    from approver.pipeline import deadlines

    rt.settings = settings.with_(rules_path=write(
        tmp_path / "late" / "r.yaml", RULES.format(address=LEGAL)
        + "    deadline: {remind_after: 4h}\n"))
    rt.__dict__.pop("rules", None)
    accounts.add(rt.store, "ada", PASSWORD, "ada@corp.example", ("api-admins",))
    ref = in_review(rt, sandbox)
    deadlines.run(rt, now=rt.redis.zscore(st.INBOX_KEY, ref) + 5 * 3600)
    send_mail()
    [(_, reminder)] = [(r, m) for r, m in smtp.messages if r == ["ada@corp.example"]]
    path = LINK.findall(parts(reminder)[0])[0][0]
    tab = requests.Session()
    page = tab.get(web + path, timeout=5)
    refused = tab.post(web + "/console/act", data={**form_of(page.text), "outcome": "approve"},
                       timeout=5)
    assert refused.status_code == 400 and "required to override" in refused.text
    done = tab.post(web + "/console/act", data={**form_of(refused.text), "outcome": "approve",
                                                "reason": "legal agreed by phone"}, timeout=5)
    assert done.status_code == 200  # the link was still good
    [override] = events(rt, ref, "step_overridden")
    assert (override["by"], override["via"]) == ("local:ada", "email")
    assert steps.standing(rt.store, ref, rt.store.state(ref))["current"] == 1


def test_rule_test_cases_may_expect_an_email_step(tmp_path):
    from approver.rules import run_rule_tests

    write(tmp_path / "rules.yaml", RULES.format(address=LEGAL))
    write(tmp_path / "tests" / "cases.yaml", """\
        cases:
          - name: the partner's legal team, then security
            facts: {}
            expect:
              outcome: review
              steps: [{email: legal@partner.example}, {group: security}]
          - name: a wrong address is a failure
            facts: {}
            expect: {steps: [{email: other@partner.example}, {group: security}]}
        """)
    report = run_rule_tests(tmp_path)
    assert [c.name for c in report.failed] == ["a wrong address is a failure"]
    assert len(report.passed) == 1
