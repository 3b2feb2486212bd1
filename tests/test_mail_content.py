"""What reaches a developer is the decision's message: no mail to a developer names a rule,
a fact or a rule's internal reason, for any shipped rule or generated decision."""

from types import SimpleNamespace

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as s

from approver import state as st
from approver.pipeline.notify import mail
from approver.rules import Facts, builtin_registry, developer_message, evaluate, load_rules
from tests.conftest import ROOT
from tests.rules_support import load_generated
from tests.test_rules_failsafe import FACT_VALUES, rule_sets

SETTINGS = SimpleNamespace(mail_templates=None, mail_from="approver@example.com",
                           public_url="https://approver.example.com")
FACT_NAMES = [name.split("<")[0].rstrip(".") for name in builtin_registry().fact_names()]
CASES = yaml.safe_load((ROOT / "rules" / "tests" / "shipped.yaml").read_text())
DEVELOPER = ("developer_approve", "developer_deny", "developer_review")


def record(decision, outcome=None) -> dict:
    """A decision record as the pipeline writes it (decide.by_rules)."""
    outcome = outcome or decision.outcome
    return {"decision_id": "d1", "outcome": outcome, "rule": decision.rule_id or "",
            "reason": decision.reason, "message": developer_message(
                outcome, decision.message if outcome == decision.outcome else ""),
            "state": st.IN_REVIEW if outcome == "review" else st.APPLIED,
            "developer_email": "carol@gmail.com", "policy_names": ["Free"], "portal": "classic"}


def developer_mails(rec: dict) -> list[str]:
    """Every part (subject, text, HTML) of the developer's mail about a record."""
    template = f"developer_{rec['outcome']}"
    if template not in DEVELOPER:
        return []
    message = mail.render(template, ["carol@gmail.com"],
                          mail.values(template, rec, "r-123", SETTINGS), SETTINGS)
    return [message["Subject"], message.get_body(("plain",)).get_content(),
            message.get_body(("html",)).get_content()]


def assert_no_internals(rec: dict, rule_ids) -> None:
    parts = developer_mails(rec)
    for part in parts:
        for rule_id in rule_ids:
            assert rule_id not in part, (rule_id, part)
        for name in FACT_NAMES:
            assert name not in part, (name, part)
        if rec["reason"] != rec["message"]:
            assert rec["reason"] not in part, part
        assert rec["message"] in part or part is parts[0]  # the subject is the outcome


def test_no_mail_to_a_developer_carries_internals_for_the_shipped_rules():
    ruleset = load_rules(ROOT / "rules")
    ids = [rule.id for rule in ruleset.rules]
    decisions = [evaluate(ruleset, Facts.from_values({**CASES.get("facts", {}), **c["facts"]}))
                 for c in CASES["cases"]]
    decisions.append(evaluate(ruleset, Facts.from_values({})))  # everything unknown
    seen = set()
    for decision in decisions:
        outcomes = {decision.outcome} | ({decision.wait.on_timeout} if decision.wait else set())
        for outcome in outcomes:
            assert_no_internals(record(decision, outcome), ids)
            seen.add((decision.rule_id, outcome))
    # Every shipped rule's own outcome was rendered, and the unknown path too.
    assert {(r.id, r.outcome) for r in ruleset.rules} <= seen
    assert ("deny-inactive-developer", "review") in seen


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules=rule_sets, facts=s.fixed_dictionaries(FACT_VALUES),
       hidden=s.sets(s.sampled_from(list(FACT_VALUES))),
       messages=s.lists(s.sampled_from([None, "We will get back to you."]), min_size=6,
                        max_size=6))
def test_no_mail_to_a_developer_carries_internals_for_generated_decisions(
        rules, facts, hidden, messages):
    items = [{"id": f"gen-rule-{i}", **{k: v for k, v in rule.items() if v is not None},
              **({"message": messages[i]} if messages[i] else {}),
              "reason": f"internal: {next(iter(rule['when']))} said so ({{developer.email}})"}
             for i, rule in enumerate(rules)]
    ruleset = load_generated({"version": 1, "rules": items})
    decision = evaluate(ruleset, Facts.from_values(
        {k: v for k, v in facts.items() if k not in hidden}))
    for outcome in {decision.outcome} | ({decision.wait.on_timeout} if decision.wait else set()):
        assert_no_internals(record(decision, outcome), [r["id"] for r in items])
