"""Operators, combinators, unknown facts and rule order, evaluated over given fact values."""

import textwrap
from datetime import UTC, datetime

import pytest

from approver.rules import Facts, evaluate, load_rules


def decide(tmp_path, when, facts, then="approve"):
    """Evaluate a one-rule set with condition `when` (YAML flow text) over `facts`."""
    path = tmp_path / "r.yaml"
    path.write_text(f"version: 1\nrules:\n  - id: r\n    when: {when}\n    then: {then}\n")
    return evaluate(load_rules(path), Facts.from_values(facts))


def result(tmp_path, when, facts):
    """A one-rule set's condition on `facts`: True, False or None (unknown)."""
    decision = decide(tmp_path, when, facts)
    if decision.rule_id is None:
        return False
    return True if decision.outcome == "approve" else None


def matches(tmp_path, when, facts):
    """Whether a rule with condition `when` matches `facts`."""
    return result(tmp_path, when, facts) is True


@pytest.mark.parametrize(
    ("when", "facts", "expected"),
    [
        ("{billing.status: active}", {"billing.status": "active"}, True),
        ("{billing.status: active}", {"billing.status": "canceled"}, False),
        ("{billing.status: {eq: active}}", {"billing.status": "active"}, True),
        ("{billing.status: {ne: active}}", {"billing.status": "past_due"}, True),
        ("{billing.status: {ne: active}}", {"billing.status": "active"}, False),
        ("{developer.key_count: 3}", {"developer.key_count": 3.0}, True),
        ("{developer.inactive: true}", {"developer.inactive": True}, True),
        ("{billing.status: {in: [active, trialing]}}", {"billing.status": "trialing"}, True),
        ("{billing.status: {in: [active, trialing]}}", {"billing.status": "canceled"}, False),
        ("{billing.status: {not_in: [active]}}", {"billing.status": "canceled"}, True),
        ("{request.policies: {in: [a, b]}}", {"request.policies": ["a", "b"]}, True),
        ("{request.policies: {in: [a, b]}}", {"request.policies": ["a", "c"]}, False),
        ("{request.policies: {not_in: [a]}}", {"request.policies": ["b", "c"]}, True),
        ("{request.policies: {not_in: [a]}}", {"request.policies": ["b", "a"]}, False),
        ("{request.policies: {contains: p1}}", {"request.policies": ["p0", "p1"]}, True),
        ("{request.policies: {contains: p2}}", {"request.policies": ["p0", "p1"]}, False),
        ("{request.fields.use: {contains: test}}", {"request.fields.use": "a test app"}, True),
        ("{request.policies: {contains_any: [x, p1]}}", {"request.policies": ["p1"]}, True),
        ("{request.policies: {contains_any: [x, y]}}", {"request.policies": ["p1"]}, False),
        ("{request.policies: {contains_all: [a, b]}}", {"request.policies": ["b", "a"]}, True),
        ("{request.policies: {contains_all: [a, b]}}", {"request.policies": ["a"]}, False),
        (
            "{request.fields.company: {matches: '^ACME( |$)'}}",
            {"request.fields.company": "ACME"},
            True,
        ),
        (
            "{request.fields.company: {matches: '^ACME( |$)'}}",
            {"request.fields.company": "ACMEX"},
            False,
        ),
        ("{request.fields.company: {matches: 'corp'}}", {"request.fields.company": "a corp"}, True),
        ("{developer.email: {starts_with: admin@}}", {"developer.email": "admin@x.com"}, True),
        (
            "{developer.email_domain: {ends_with: .partner.example}}",
            {"developer.email": "a@b.partner.example"},
            True,
        ),
        (
            "{developer.email_domain: {ends_with: [.a, .b]}}",
            {"developer.email_domain": "x.b"},
            True,
        ),
        ("{developer.email_domain: {ends_with: .a}}", {"developer.email_domain": "x.b"}, False),
        ("{developer.key_count: {gt: 2}}", {"developer.key_count": 3}, True),
        ("{developer.key_count: {gt: 3}}", {"developer.key_count": 3}, False),
        ("{developer.key_count: {gte: 3}}", {"developer.key_count": 3}, True),
        ("{developer.key_count: {lt: 3}}", {"developer.key_count": 2}, True),
        ("{developer.key_count: {lte: 2}}", {"developer.key_count": 3}, False),
        (
            "{developer.created_at: {lt: '2024-01-01'}}",
            {"developer.created_at": "2023-06-01T10:00:00Z"},
            True,
        ),
        (
            "{developer.created_at: {gte: 2024-01-01}}",
            {"developer.created_at": "2023-06-01T10:00:00Z"},
            False,
        ),
        ("{developer.email: {exists: true}}", {"developer.email": "a@b.c"}, True),
        ("{developer.email: {exists: false}}", {"developer.email": "a@b.c"}, False),
        ("{developer.key_count: {gte: 1, lte: 3}}", {"developer.key_count": 2}, True),
        ("{developer.key_count: {gte: 1, lte: 3}}", {"developer.key_count": 4}, False),
    ],
)
def test_operator_semantics(tmp_path, when, facts, expected):
    assert matches(tmp_path, when, facts) is expected


def test_a_value_of_the_wrong_type_is_unknown_never_false(tmp_path):
    assert result(tmp_path, "{developer.email: {matches: a}}", {"developer.email": 5}) is None
    assert result(tmp_path, "{billing.status: {in: [a]}}", {"billing.status": {"x": 1}}) is None
    assert result(tmp_path, "{developer.key_count: {gt: 2}}", {"developer.key_count": "9"}) is None
    assert result(tmp_path, "{request.policies: {contains: a}}", {"request.policies": "a"}) is None


def test_unknown_fact_is_unknown_to_every_operator_but_exists(tmp_path):
    for op in (
        "active",
        "{ne: active}",
        "{in: [a]}",
        "{not_in: [a]}",
        "{contains: a}",
        "{matches: '.*'}",
        "{starts_with: a}",
    ):
        assert result(tmp_path, f"{{billing.status: {op}}}", {}) is None, op
    assert result(tmp_path, "{developer.key_count: {gt: 0}}", {}) is None
    assert result(tmp_path, "{billing.status: {exists: true}}", {}) is False
    assert result(tmp_path, "{billing.status: {exists: false}}", {}) is True


def test_not_of_unknown_stays_unknown(tmp_path):
    assert result(tmp_path, "{not: {billing.status: active}}", {}) is None
    assert result(tmp_path, "{not: {billing.status: {ne: active}}}", {}) is None
    assert matches(tmp_path, "{not: {billing.status: active}}", {"billing.status": "canceled"})


def test_any_is_true_if_one_child_is_true_else_unknown_if_one_is(tmp_path):
    when = "{any: [{billing.status: active}, {developer.email_domain: x.com}]}"
    assert result(tmp_path, when, {"developer.email": "a@x.com"}) is True
    assert result(tmp_path, when, {"developer.email": "a@y.com"}) is None
    known = {"developer.email": "a@y.com", "billing.status": "canceled"}
    assert result(tmp_path, when, known) is False


def test_all_is_false_if_one_child_is_false_else_unknown_if_one_is(tmp_path):
    when = "{all: [{billing.status: {ne: active}}, {developer.email_domain: x.com}]}"
    assert result(tmp_path, when, {"developer.email": "a@x.com"}) is None
    assert result(tmp_path, when, {"developer.email": "a@y.com"}) is False
    assert matches(tmp_path, when, {"developer.email": "a@x.com", "billing.status": "canceled"})


def test_not_of_all_with_a_false_child_holds_despite_unknown(tmp_path):
    # all(unknown, false) is definitely false, so its negation is definitely true.
    when = "{not: {all: [{billing.status: active}, {developer.email_domain: x.com}]}}"
    assert matches(tmp_path, when, {"developer.email": "a@y.com"})
    assert result(tmp_path, when, {"developer.email": "a@x.com"}) is None


def test_several_keys_under_when_mean_all(tmp_path):
    when = "{billing.status: active, developer.email_domain: x.com}"
    assert matches(tmp_path, when, {"billing.status": "active", "developer.email": "a@x.com"})
    assert not matches(tmp_path, when, {"billing.status": "active", "developer.email": "a@y.com"})


def test_combinators_nest(tmp_path):
    when = (
        "{any: [{all: [{billing.status: active}, {not: {developer.inactive: true}}]},"
        " {request.fields.company: {matches: ^ACME}}]}"
    )
    assert matches(tmp_path, when, {"billing.status": "active", "developer.inactive": False})
    given = {"billing.status": "active", "developer.inactive": True,
             "request.fields.company": "Initech"}
    assert result(tmp_path, when, given) is False
    assert matches(tmp_path, when, {"request.fields.company": "ACME"})


def test_not_accepts_a_list_meaning_all(tmp_path):
    when = "{not: [{billing.status: active}, {developer.inactive: false}]}"
    assert matches(tmp_path, when, {"billing.status": "active", "developer.inactive": True})
    assert not matches(tmp_path, when, {"billing.status": "active", "developer.inactive": False})


@pytest.mark.parametrize("when", ["{}", "null"])
def test_rule_without_conditions_always_matches(tmp_path, when):
    assert matches(tmp_path, when, {})


def test_first_matching_rule_wins_and_default_applies_otherwise(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            version: 1
            default: deny
            rules:
              - id: first
                when: {developer.email_domain: x.com}
                then: review
              - id: second
                when: {developer.email_domain: {ends_with: .com}}
                then: approve
            """
        )
    )
    ruleset = load_rules(path)
    assert evaluate(ruleset, Facts.from_values({"developer.email": "a@x.com"})).rule_id == "first"
    second = evaluate(ruleset, Facts.from_values({"developer.email": "a@y.com"}))
    assert (second.outcome, second.rule_id) == ("approve", "second")
    fallback = evaluate(ruleset, Facts.from_values({"developer.email": "a@y.org"}))
    assert (fallback.outcome, fallback.rule_id) == ("deny", None)
    assert fallback.reason == "No rule matched; default is deny."


def test_datetime_fact_values_compare_as_instants(tmp_path):
    created = datetime(2024, 1, 1, 1, 0, tzinfo=UTC)
    assert matches(
        tmp_path,
        "{request.created_at: {gt: '2024-01-01T01:30:00+02:00'}}",
        {"request.created_at": created},
    )
