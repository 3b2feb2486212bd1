"""Requests with steps, decided by people in groups: two steps, four eyes, outsiders
refused, the last approval applied once in Tyk; the console, the command line, the log."""

import io
import sys
import threading
import time

import pytest

from approver import cli
from approver import state as st
from approver.pipeline import steps
from approver.state import accounts
from approver.state.steps import steps_key
from tests.console_support import PASSWORD, csrf, sign_in
from tests.rules_support import write
from tests.test_review import APPROVE, CAROL, in_review

OWNERS = """\
version: 1
rules:
  - id: owners-decide
    then: review
    reason: Security, then two owners.
    approvals:
      - group: security
      - group: owners
        count: 2
"""

PEOPLE = {  # name: (email, groups)
    "sam": ("sam@corp.example", ("security", "owners")),
    "olga": ("olga@corp.example", ("owners",)),
    "oscar": ("oscar@corp.example", ("owners",)),
    "mia": ("mia@corp.example", ("marketing",)),
    "carl": (CAROL, ("owners",)),  # the developer's own address
    "ada": ("ada@corp.example", ("api-admins",)),
}


@pytest.fixture
def settings(settings, tmp_path):
    return settings.with_(rules_path=write(tmp_path / "rules" / "owners.yaml", OWNERS),
                          admins_group="api-admins")


@pytest.fixture
def people(rt):
    for name, (email, groups) in PEOPLE.items():
        accounts.add(rt.store, name, PASSWORD, email, groups)
    return PEOPLE


def browser(app, name):
    client = app.test_client()
    assert sign_in(client, name).status_code == 303
    return client


def decide(client, ref, outcome="approve", reason=""):
    page = client.get(f"/console/requests/{ref}")
    return client.post(f"/console/requests/{ref}/decide", data={
        "csrf_token": csrf(page.data), "outcome": outcome, "reason": reason})


def approvals_in_tyk(sandbox, ref):
    return sandbox.app.sandbox.calls(method="PUT", path=APPROVE + ref)


def test_two_steps_four_eyes_in_the_console(app, rt, sandbox, work, people):
    ref = in_review(rt, sandbox)
    assert rt.store.state(ref)["approvals"] == [{"count": 1, "group": "security"},
                                                {"count": 2, "group": "owners"}]
    sam, olga, oscar, mia, carl = (browser(app, n) for n in
                                   ("sam", "olga", "oscar", "mia", "carl"))
    # Outside the current step's group: refused, nothing counted.
    answer = decide(mia, ref)
    assert answer.status_code == 403 and b"not in security" in answer.data
    assert decide(olga, ref).status_code == 403  # an owner, but the step is security's
    # Security approves: the request stays pending in Tyk, now at the owners' step.
    assert decide(sam, ref, reason="looked at it").status_code == 303
    work()
    assert rt.store.state(ref)["state"] == st.IN_REVIEW
    assert approvals_in_tyk(sandbox, ref) == []
    page = olga.get(f"/console/requests/{ref}").data.decode()
    assert "approved by local:sam" in page and "now: 0 of 2 owners" in page
    # The same person again (sam is an owner too): four eyes.
    answer = decide(sam, ref)
    assert answer.status_code == 403 and b"already approved a step" in answer.data
    # Nobody decides a request of their own address.
    answer = decide(carl, ref)
    assert answer.status_code == 403 and b"their own email address" in answer.data
    assert decide(olga, ref).status_code == 303
    work()
    assert approvals_in_tyk(sandbox, ref) == []
    assert "now: 1 of 2 owners" in oscar.get(f"/console/requests/{ref}").data.decode()
    # The second owner completes the last step: applied in Tyk, once.
    assert decide(oscar, ref).status_code == 303
    work()
    state = rt.store.state(ref)
    assert (state["state"], state["outcome"], state["decided_by"]) == (
        st.APPLIED, "approve", "local:oscar")
    assert len(approvals_in_tyk(sandbox, ref)) == 1
    steps_logged = [(e["event"], e["by"], e["via"], e["step"])
                    for e in reversed(rt.store.entries(50, request_id=ref))
                    if e["event"].startswith("step_")]
    assert steps_logged == [("step_approved", "local:sam", "console", "1 of security"),
                            ("step_approved", "local:olga", "console", "2 of owners"),
                            ("step_approved", "local:oscar", "console", "2 of owners")]


def test_any_member_s_deny_ends_the_request_with_their_reason(app, rt, sandbox, work,
                                                              people):
    ref = in_review(rt, sandbox)
    assert decide(browser(app, "sam"), ref).status_code == 303
    assert decide(browser(app, "mia"), ref, "deny", "not ours").status_code == 403
    assert decide(browser(app, "olga"), ref, "deny", "no contract").status_code == 303
    work()
    state = rt.store.state(ref)
    assert (state["state"], state["outcome"], state["decided_by"], state["reason"]) == (
        st.APPLIED, "deny", "local:olga", "no contract")
    assert approvals_in_tyk(sandbox, ref) == []


def test_an_admin_overrides_a_step_with_a_reason(app, rt, sandbox, work, people):
    ref = in_review(rt, sandbox)
    ada = browser(app, "ada")
    answer = decide(ada, ref)
    assert answer.status_code == 409 and b"a reason is required to override" in answer.data
    assert decide(ada, ref, reason="security is away; I checked").status_code == 303
    [entry] = [e for e in rt.store.entries(20, request_id=ref)
               if e["event"] == "step_overridden"]
    assert (entry["by"], entry["step"], entry["reason"]) == (
        "local:ada", "1 of security", "security is away; I checked")
    page = ada.get(f"/console/requests/{ref}").data.decode()
    assert "overridden by local:ada" in page
    assert rt.store.state(ref)["state"] == st.IN_REVIEW


def test_waiting_for_me_lists_the_steps_my_groups_may_decide_now(app, rt, sandbox, people):
    ref = in_review(rt, sandbox)
    sam, olga = browser(app, "sam"), browser(app, "olga")
    assert "Waiting for me (1)" in sam.get("/console/").data.decode()
    assert ref in sam.get("/console/?show=mine").data.decode()
    assert "Waiting for me (0)" in olga.get("/console/").data.decode()
    assert ref not in olga.get("/console/?show=mine").data.decode()
    assert decide(sam, ref).status_code == 303
    mine = olga.get("/console/?show=mine").data.decode()
    assert "Waiting for me (1)" in mine and ref in mine and "0 of 2 owners" in mine
    assert "Waiting for me (0)" in sam.get("/console/").data.decode()  # four eyes


def test_two_owners_approving_the_last_step_at_once_apply_it_once(rt, sandbox, work,
                                                                   people):
    ref = in_review(rt, sandbox)
    person = {n: steps.Person(f"local:{n}", g, e) for n, (e, g) in PEOPLE.items()}
    assert steps.act(rt.store, ref, "approve", "", person["sam"], "cli", "here") is None
    assert steps.act(rt.store, ref, "approve", "", person["olga"], "cli", "here") is None
    # A third owner, so two approvals race for the one place left in the last step.
    accounts.add(rt.store, "otto", PASSWORD, "otto@corp.example", ("owners",))
    racers = [person["oscar"], steps.Person("local:otto", ("owners",), "otto@corp.example")]
    results, start = {}, threading.Barrier(len(racers))

    def approve(who):
        start.wait()
        try:
            results[who.name] = steps.act(rt.store, ref, "approve", "", who, "console", "here")
        except steps.review.Refused as exc:
            results[who.name] = exc

    threads = [threading.Thread(target=approve, args=(who,)) for who in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    claims = [r for r in results.values() if isinstance(r, dict)]
    refused = [r for r in results.values() if isinstance(r, Exception)]
    assert len(claims) == 1 and len(refused) == 1, results
    assert "moved on" in str(refused[0]) or "already deciding" in str(refused[0])
    steps.review.enqueue_claim(rt.queue, ref, claims[0], ())
    work()
    assert rt.store.state(ref)["outcome"] == "approve"
    assert len(approvals_in_tyk(sandbox, ref)) == 1


def run(capsys, monkeypatch, *argv):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_command_line_is_held_to_the_same_rules(capsys, monkeypatch, rt, sandbox,
                                                    people):
    ref = in_review(rt, sandbox)
    code, _, err = run(capsys, monkeypatch, "review", "approve", ref, "--by", "mia")
    assert code == 1 and "not in security" in err
    code, _, err = run(capsys, monkeypatch, "review", "approve", ref, "--by", "nobody")
    assert code == 1 and "no console account" in err
    code, out, _ = run(capsys, monkeypatch, "review", "approve", ref, "--by", "sam")
    assert code == 0 and "waits for its remaining steps" in out
    code, _, err = run(capsys, monkeypatch, "review", "approve", ref, "--by", "local:sam")
    assert code == 1 and "already approved a step" in err
    assert run(capsys, monkeypatch, "review", "approve", ref, "--by", "olga")[0] == 0
    code, out, _ = run(capsys, monkeypatch, "review", "approve", ref, "--by", "oscar")
    assert code == 0 and f"key request {ref} approved by local:oscar in Tyk" in out
    assert len(approvals_in_tyk(sandbox, ref)) == 1
    code, out, _ = run(capsys, monkeypatch, "decisions", "show", ref)
    assert "step 1: 1 of security: passed; approved by local:sam" in out
    assert "step 2: 2 of owners: passed; approved by local:olga, local:oscar" in out
    assert "[1 of security via cli]" in out


def test_bulk_approval_counts_toward_steps_and_refuses_outsiders(app, rt, sandbox, people):
    first, second = in_review(rt, sandbox), in_review(rt, sandbox, email="dave@example.com")
    mia, sam = browser(app, "mia"), browser(app, "sam")
    page = mia.get("/console/")
    answer = mia.post("/console/decide", data={"csrf_token": csrf(page.data),
                                               "outcome": "approve", "ids": [first, second]})
    assert answer.status_code == 403 and b"not in security" in answer.data
    page = sam.get("/console/")
    answer = sam.post("/console/decide", data={"csrf_token": csrf(page.data),
                                               "outcome": "approve", "ids": [first, second]},
                      follow_redirects=True)
    assert b"Your approval is recorded on 2 request(s)" in answer.data
    for ref in (first, second):
        assert steps.refusal(rt.store, ref, steps.Person("local:sam", ("owners",))) == \
            "local:sam already approved a step of this request (four eyes)"
        assert steps.refusal(rt.store, ref, steps.Person("local:olga", ("owners",))) is None


def test_a_request_s_steps_go_with_its_record_when_retention_drops_it(rt, sandbox, work,
                                                                      people):
    ref = in_review(rt, sandbox)
    sam = steps.Person("local:sam", ("security", "owners"), "sam@corp.example")
    assert steps.act(rt.store, ref, "deny", "no", sam, "cli", "here")["outcome"] == "deny"
    assert rt.redis.exists(steps_key(ref)) == 0  # a deny takes no step
    olga = steps.Person("local:olga", ("owners",), "olga@corp.example")
    other = in_review(rt, sandbox, email="dave@example.com")
    assert steps.act(rt.store, other, "approve", "", sam, "cli", "here") is None
    assert rt.redis.exists(steps_key(other)) == 1
    taken = steps.act(rt.store, other, "deny", "no contract", olga, "cli", "here")
    steps.review.enqueue_claim(rt.queue, other, taken, ())
    work()
    assert rt.store.state(other)["state"] == st.APPLIED
    rt.redis.zadd(st.RECORDS_KEY, {other: time.time() - 86400})
    trimmed = st.Store(rt.redis, st.Retention(record_max_age=3600)).trim()
    assert trimmed["records"] >= 1
    assert rt.store.state(other) is None and rt.redis.exists(steps_key(other)) == 0
