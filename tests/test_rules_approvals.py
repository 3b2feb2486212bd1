"""A review rule's `approvals:` and `deadline:`: loaded in order, carried on the decision,
and every mistake reported at its file:line."""

from approver.pipeline import backtest
from approver.rules import Facts, check, evaluate, load_rules, run_rule_tests
from approver.rules.engine import Decision
from approver.rules.explain import render
from tests.rules_support import write
from tests.test_rules_backtest import decide_samples

OWNERS = """\
version: 1
rules:
  - id: payments-needs-owners
    when: {request.policies: {contains_any: [pol-payments]}}
    then: review
    reason: Payments access needs security and two owners.
    approvals:
      - validator: crm
      - group: security
      - group: payments-owners
        count: 2
    deadline: {remind_after: 4h, escalate_after: 1d, escalate_to: api-leads,
               expire_after: 14d, on_expire: deny}
"""


def test_steps_and_deadline_load_and_ride_on_the_decision(tmp_path):
    rules = load_rules(write(tmp_path / "r.yaml", OWNERS))
    decision = evaluate(rules, Facts.from_values({"request.policies": ["pol-payments"]}))
    assert decision.outcome == "review"
    assert [s.describe() for s in decision.approvals] == [
        "validator crm", "1 of security", "2 of payments-owners"]
    deadline = decision.deadline
    assert (deadline.remind_after, deadline.escalate_after, deadline.escalate_to,
            deadline.expire_after, deadline.on_expire) == (
        4 * 3600, 86400, "api-leads", 14 * 86400, "deny")
    again = Decision.from_dict(decision.to_dict())
    assert (again.approvals, again.deadline) == (decision.approvals, decision.deadline)
    assert decision.to_dict()["approvals"][2] == {"group": "payments-owners", "count": 2}


def test_a_request_no_rule_with_steps_decides_has_none(tmp_path):
    rules = load_rules(write(tmp_path / "r.yaml", OWNERS))
    decision = evaluate(rules, Facts.from_values({"request.policies": ["pol-free"]}))
    assert decision.outcome == "review" and decision.approvals == () \
        and decision.deadline is None
    # Could not be evaluated: no rule is known to apply, so none of its steps either.
    unknown = evaluate(rules, Facts.from_values({}))
    assert unknown.outcome == "review" and unknown.approvals == ()


def test_every_mistake_in_the_block_is_reported_at_its_line(tmp_path):
    path = write(tmp_path / "bad.yaml", """\
        version: 1
        rules:
          - id: a
            then: approve
            approvals: [{group: x}]
          - id: b
            then: review
            approvals:
              - {group: x, validator: crm}
              - validator: crm
                count: 2
              - {group: y, count: 0}
              - {group: z, quorum: 2}
            deadline:
              remind_after: 3 days
              escalate_after: 20d
              expire_after: 14d
              on_expire: approve
          - id: c
            then: review
            approvals: [{group: x}, {group: x}]
            deadline: {escalate_after: 1d, on_expire: review}
        """)
    lines = {}
    for problem in check(path):
        lines.setdefault(problem.line, []).append(problem.message)
    text = {line: " | ".join(messages) for line, messages in lines.items()}
    assert "approvals: is only allowed with then: review" in text[5]
    assert "exactly one of them" in text[9]
    assert "count: is for a group's step" in text[11]
    assert 12 in text and "0" in text[12]
    assert "unexpected key 'quorum'" in text[13]
    assert "bad duration '3 days'" in text[15] or "bad duration '3 days'" in str(text)
    assert "on_expire" in text[18] and "approve" in text[18]
    assert "group x has two steps" in text[21]
    assert "escalate_after and escalate_to go together" in text[22]
    assert "on_expire: needs expire_after:" in text[22]


def test_reminders_and_escalation_after_the_expiry_are_refused(tmp_path):
    path = write(tmp_path / "late.yaml", """\
        version: 1
        rules:
          - id: late
            then: review
            approvals: [{group: security}]
            deadline: {remind_after: 2d, escalate_after: 12h, escalate_to: leads,
                       expire_after: 1d}
        """)
    [problem] = check(path)
    assert problem.line == 6 and "remind_after is not before expire_after" in problem.message


def test_rule_test_cases_state_the_expected_steps(tmp_path):
    write(tmp_path / "rules.yaml", OWNERS)
    write(tmp_path / "tests" / "cases.yaml", """\
        cases:
          - name: payments go to the crm, security and two owners
            facts: {request.policies: [pol-payments]}
            expect:
              outcome: review
              steps: [{validator: crm}, {group: security}, {group: payments-owners, count: 2}]
          - name: one owner is not what the rule asks
            facts: {request.policies: [pol-payments]}
            expect:
              steps: [{validator: crm}, {group: security}, {group: payments-owners}]
          - name: anything else waits for anyone
            facts: {request.policies: [pol-free]}
            expect: {outcome: review, steps: []}
        """)
    report = run_rule_tests(tmp_path)
    assert [c.name for c in report.failed] == ["one owner is not what the rule asks"]
    assert "steps: expected" in str(report.failed[0])
    assert len(report.passed) == 2


def test_explain_shows_the_steps_and_the_deadline(tmp_path):
    rules = load_rules(write(tmp_path / "r.yaml", OWNERS))
    text = render(evaluate(rules, Facts.from_values({"request.policies": ["pol-payments"]})))
    assert "step 1:   validator crm\nstep 2:   1 of security\nstep 3:   2 of payments-owners" \
        in text
    assert "deadline: remind after 4h, escalate after 1d, escalate to api-leads, expire " \
        "after 14d, then deny" in text


EVERYONE_REVIEWS = """\
version: 1
rules:
  - id: people-look
    then: review
"""


def test_backtest_names_the_requests_whose_steps_would_change(rt, client, sandbox, work,
                                                              tmp_path):
    rt.settings = rt.settings.with_(rules_path=write(tmp_path / "now.yaml", EVERYONE_REVIEWS))
    rt.__dict__.pop("rules", None)
    ids = decide_samples(client, sandbox, work)
    candidate = load_rules(write(tmp_path / "candidate.yaml", EVERYONE_REVIEWS + (
        "    approvals: [{group: security}, {group: owners, count: 2}]\n")))
    result = backtest.run(rt.store, candidate)
    assert (result.changed, result.moved) == ([], [])
    assert sorted(c["request_id"] for c in result.steps) == sorted(ids)
    text = result.render(10)
    assert "5 would need other steps" in text
    assert f"{ids[0]}: people-look needed no steps; now, needs 1 of security, 2 of owners" \
        in text
