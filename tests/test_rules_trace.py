"""Decisions: reasons, wait specs, the trace of every rule tried, and evaluation speed."""

import json
import pickle
from dataclasses import FrozenInstanceError

import pytest

from approver.rules import Decision, Facts, evaluate, load_rules
from tests.rules_support import write

RULES = """\
version: 1
default: review
rules:
  - id: deny-disposable-email
    when:
      developer.email_domain: {in: [mailinator.com, guerrillamail.com]}
    then: deny
    reason: "{developer.email_domain} is not accepted ({{literal}})"
  - id: paid-plans-need-billing
    when:
      request.policies: {contains_any: [pol-pro, pol-enterprise]}
      billing.status: {not_in: [active, trialing]}
    then: wait
    wait: {for: billing, timeout: 72h, on_timeout: deny}
  - id: partners
    when:
      any:
        - developer.email_domain: {ends_with: .partner.example}
        - request.fields.company: {matches: "^ACME( |$)"}
      not: {developer.inactive: true}
    then: approve
"""


def ruleset(tmp_path, text=RULES):
    """Load `text` as a rules file."""
    return load_rules(write(tmp_path / "rules.yaml", text))


def test_reason_template_is_filled_from_facts(tmp_path):
    decision = evaluate(
        ruleset(tmp_path), Facts.from_values({"developer.email": "x@Mailinator.com"})
    )
    assert decision.outcome == "deny"
    assert decision.reason == "mailinator.com is not accepted ({literal})"


def test_unknown_fact_in_reason_renders_as_unknown(tmp_path):
    rules = ruleset(
        tmp_path,
        "version: 1\nrules:\n  - id: a\n    then: review\n    reason: 'plan {billing.plan}'\n",
    )
    assert evaluate(rules, Facts.from_values({})).reason == "plan unknown"


def test_matched_rule_without_reason_gets_a_default_reason(tmp_path):
    rules = ruleset(tmp_path, "version: 1\nrules:\n  - id: everyone\n    then: approve\n")
    assert evaluate(rules, Facts.from_values({})).reason == "Matched rule everyone."


def test_wait_decision_carries_its_wait_spec(tmp_path):
    facts = Facts.from_values(
        {
            "developer.email": "a@x.com",
            "request.policies": ["pol-pro"],
            "billing.status": "canceled",
        }
    )
    decision = evaluate(ruleset(tmp_path), facts)
    assert (decision.outcome, decision.rule_id) == ("wait", "paid-plans-need-billing")
    assert decision.wait.to_dict() == {
        "for": "billing",
        "timeout_seconds": 259200,
        "on_timeout": "deny",
    }


def test_trace_lists_every_rule_tried_with_conditions(tmp_path):
    rules = ruleset(tmp_path)
    facts = Facts.from_values(
        {
            "developer.email": "a@b.partner.example",
            "request.policies": ["pol-free"],
            "developer.inactive": False,
        }
    )
    decision = evaluate(rules, facts)
    assert decision.rule_id == "partners"
    assert decision.revision == rules.revision
    assert decision.trace == [
        {
            "rule": "deny-disposable-email",
            "matched": False,
            "conditions": [
                {
                    "fact": "developer.email_domain",
                    "actual": "b.partner.example",
                    "op": "in",
                    "expected": ["mailinator.com", "guerrillamail.com"],
                    "result": False,
                }
            ],
        },
        {
            "rule": "paid-plans-need-billing",
            "matched": False,
            "conditions": [
                {
                    "fact": "request.policies",
                    "actual": ["pol-free"],
                    "op": "contains_any",
                    "expected": ["pol-pro", "pol-enterprise"],
                    "result": False,
                }
            ],
        },
        {
            "rule": "partners",
            "matched": True,
            "conditions": [
                {
                    "any": [
                        {
                            "fact": "developer.email_domain",
                            "actual": "b.partner.example",
                            "op": "ends_with",
                            "expected": ".partner.example",
                            "result": True,
                        }
                    ],
                    "result": True,
                },
                {
                    "not": {
                        "fact": "developer.inactive",
                        "actual": False,
                        "op": "eq",
                        "expected": True,
                        "result": False,
                    },
                    "result": True,
                },
            ],
        },
    ]


def test_trace_marks_unknown_conditions_with_a_note(tmp_path):
    facts = Facts.from_values({"developer.email": "a@x.com", "request.policies": ["pol-pro"]})
    decision = evaluate(ruleset(tmp_path), facts)
    assert (decision.outcome, decision.rule_id) == ("review", "paid-plans-need-billing")
    assert decision.reason == ("Rule paid-plans-need-billing could not be evaluated: "
                               "billing.status is unknown (not given).")
    billing_rule = decision.trace[1]
    assert billing_rule["matched"] is None and billing_rule["on_unknown"] == "review"
    assert billing_rule["conditions"][1] == {
        "fact": "billing.status",
        "actual": None,
        "op": "not_in",
        "expected": ["active", "trialing"],
        "result": "unknown",
        "note": "not given",
    }
    assert decision.facts["billing.status"] is None
    assert decision.notes["billing.status"] == "not given"


def test_decision_to_dict_is_json_serialisable(tmp_path):
    facts = Facts.from_values(
        {"developer.email": "a@x.com", "developer.created_at": "2024-01-01T00:00:00Z",
         "request.policies": ["p1"], "request.fields.company": "Initech"}
    )
    decision = evaluate(ruleset(tmp_path), facts)
    data = json.loads(json.dumps(decision.to_dict()))
    assert data["outcome"] == "review" and data["rule_id"] is None
    assert data["reason"] == "No rule matched; default is review."
    assert data["revision"] == decision.revision
    assert [entry["rule"] for entry in data["trace"]] == [
        "deny-disposable-email",
        "paid-plans-need-billing",
        "partners",
    ]
    assert data["facts"]["developer.email_domain"] == "x.com"


def test_decision_round_trips_through_dict_and_pickle(tmp_path):
    facts = Facts.from_values(
        {
            "developer.email": "a@x.com",
            "request.policies": ["pol-pro"],
            "billing.status": "canceled",
        }
    )
    decision = evaluate(ruleset(tmp_path), facts)
    again = Decision.from_dict(decision.to_dict())
    assert again == decision and again.to_dict() == decision.to_dict()
    # RQ stores job results with pickle; our own bytes, so loading them is safe here.
    assert pickle.loads(pickle.dumps(decision)).to_dict()  # noqa: S301 == decision.to_dict()


def test_decision_is_frozen(tmp_path):
    decision = evaluate(ruleset(tmp_path), Facts.from_values({}))
    assert isinstance(decision, Decision)
    with pytest.raises(FrozenInstanceError):
        decision.outcome = "approve"
