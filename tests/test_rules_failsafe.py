"""Rules that cannot fail open: each way an edit or an outage once approved what it should not."""

import textwrap
import threading

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as s

from approver.rules import (
    UNKNOWN,
    FactContext,
    Facts,
    LiveRules,
    Registry,
    builtin_registry,
    check,
    evaluate,
    fact,
    load_rules,
    register_plugin,
    run_rule_tests,
)
from approver.rules.operators import Pattern
from tests.rules_support import load_generated, write

CATCH_ALL = """\
  - id: everyone-else
    then: approve
"""


def with_catch_all(path, text):
    """Write the rules in `text` (indented YAML) followed by an approve-everyone rule."""
    return write(path, textwrap.dedent(text) + CATCH_ALL)


def finishes(fn, seconds=10.0):
    """Run `fn` in a thread; its result, or fail if it is still running after `seconds`."""
    out = {}
    thread = threading.Thread(target=lambda: out.update(value=fn()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds}s"
    return out["value"]


# -- 1. types ---------------------------------------------------------------------------------

def test_lt_on_a_sign_up_field_is_refused_at_check_with_the_conversion(tmp_path):
    path = with_catch_all(tmp_path / "r.yaml", """\
        version: 1
        rules:
          - id: small-companies
            when:
              developer.fields.company size: {lt: 10}
            then: review
        """)
    [problem] = check(path)
    assert problem.line == 5
    assert problem.message == (
        "lt tests number, time, duration, but developer.fields.company size is text (Tyk "
        "sends form and sign-up fields as text); convert it in the rule: "
        "`developer.fields.company size: {as: number, lt: 10}`")


def test_gina_with_a_company_size_of_four_goes_to_review_not_to_the_catch_all(tmp_path):
    ruleset = load_rules(with_catch_all(tmp_path / "r.yaml", """\
        version: 1
        rules:
          - id: small-companies
            when:
              developer.fields.company size: {as: number, lt: 10}
            then: review
        """))

    def decide(size):
        return evaluate(ruleset, Facts.from_values({"developer.fields.company size": size}))

    assert (decide("4").outcome, decide("4").rule_id) == ("review", "small-companies")
    assert decide("40").outcome == "approve"
    unconvertible = decide("four")
    assert (unconvertible.outcome, unconvertible.rule_id) == ("review", "small-companies")
    assert "'four' is not a number" in unconvertible.reason
    assert decide(4).outcome == "review"  # a number where Tyk sends text: mistyped, unknown


def test_a_value_of_the_wrong_type_in_a_rule_says_what_to_write(tmp_path):
    for when, words in [
        ("{developer.fields.size: 4}", "developer.fields.size is text (Tyk sends form and "
                                       "sign-up fields as text); write '4' in quotes"),
        ("{developer.key_count: '3'}", "developer.key_count is number; write 3 without quotes"),
        ("{developer.inactive: 'yes'}", "write true without quotes"),
        ("{developer.created_at: {lt: 5}}", "write an ISO 8601 date or time like 2024-01-31"),
        ("{request.policies: {matches: x}}", "matches tests text, but request.policies is "
                                             "list of text; operators for list of text:"),
        ("{developer.email: {as: number, gt: 1}}", None),
        ("{developer.email: {as: [number], gt: 1}}", "as: converts to number, boolean, time"),
        ("{developer.key_count: {as: number, gt: 1}}", "as: number converts text, and this "
                                                       "fact is number"),
    ]:
        path = write(tmp_path / "r.yaml",
                     f"version: 1\nrules:\n  - id: a\n    when: {when}\n    then: deny\n")
        problems = check(path)
        if words is None:
            assert problems == [], (when, problems)
        else:
            assert [p.line for p in problems] == [4] and words in problems[0].message, (
                when, problems)


def test_a_plugin_value_of_the_wrong_type_is_unknown_and_the_trace_says_so(tmp_path):
    registry = builtin_registry()

    @fact("acme.score", type="number", registry=Registry())
    def score(ctx):
        return "high"

    register_plugin(registry, "acme.score", score)
    ruleset = load_rules(with_catch_all(tmp_path / "r.yaml", """\
        version: 1
        rules:
          - id: risky
            when: {acme.score: {gt: 80}}
            then: deny
        """), registry)
    decision = evaluate(ruleset, Facts(FactContext(request={}), registry=registry))
    assert (decision.outcome, decision.rule_id) == ("review", "risky")
    assert decision.reason == ("Rule risky could not be evaluated: acme.score is unknown "
                               "(not number: got text 'high').")


# -- 2. fail-safe evaluation ------------------------------------------------------------------

BILLING_OUTAGE = """\
version: 1
rules:
  - id: past-due-denied
    when: {billing.status: past_due}
    then: deny
"""


def test_a_deny_rule_that_cannot_be_evaluated_stops_with_review(tmp_path):
    ruleset = load_rules(write(tmp_path / "r.yaml", BILLING_OUTAGE + CATCH_ALL))
    decision = evaluate(ruleset, Facts.from_values({}))
    assert (decision.outcome, decision.rule_id) == ("review", "past-due-denied")
    assert decision.reason == ("Rule past-due-denied could not be evaluated: billing.status "
                               "is unknown (not given).")
    assert [(t["rule"], t["matched"], t["on_unknown"]) for t in decision.trace] == [
        ("past-due-denied", None, "review")]


def test_on_unknown_deny_denies_and_skip_goes_on_but_never_approves(tmp_path):
    deny = load_rules(write(tmp_path / "d.yaml", BILLING_OUTAGE + "    on_unknown: deny\n"
                            + CATCH_ALL))
    assert evaluate(deny, Facts.from_values({})).outcome == "deny"
    skip = load_rules(write(tmp_path / "s.yaml", BILLING_OUTAGE + "    on_unknown: skip\n"
                            + "  - id: blocked\n    when: {developer.email_domain: x.com}\n"
                            + "    then: deny\n" + CATCH_ALL))
    assert evaluate(skip, Facts.from_values({"developer.email": "a@x.com"})).rule_id == "blocked"
    skipped = evaluate(skip, Facts.from_values({"developer.email": "a@y.com"}))
    assert (skipped.outcome, skipped.rule_id) == ("review", "everyone-else")
    assert "Not approved: rule past-due-denied before it could not be evaluated" in \
        skipped.reason
    known = evaluate(skip, Facts.from_values({"developer.email": "a@y.com",
                                              "billing.status": "active"}))
    assert known.outcome == "approve"


def test_a_wait_after_a_skipped_rule_ends_in_review_not_approval_when_it_times_out(tmp_path):
    ruleset = load_rules(write(tmp_path / "w.yaml", BILLING_OUTAGE + "    on_unknown: skip\n"
                               + "  - id: wait-billing\n    when: {developer.email_domain: y.com}\n"
                               + "    then: wait\n"
                               + "    wait: {for: billing, timeout: 1h, on_timeout: approve}\n"))
    skipped = evaluate(ruleset, Facts.from_values({"developer.email": "a@y.com"}))
    assert (skipped.outcome, skipped.wait.on_timeout) == ("wait", "review")
    assert "Not approved when the wait ends: rule past-due-denied before it could not be " \
        "evaluated" in skipped.reason
    known = evaluate(ruleset, Facts.from_values({"developer.email": "a@y.com",
                                                 "billing.status": "active"}))
    assert (known.outcome, known.wait.on_timeout) == ("wait", "approve")


def test_on_unknown_approve_is_refused(tmp_path):
    path = write(tmp_path / "r.yaml", BILLING_OUTAGE + "    on_unknown: approve\n")
    [problem] = check(path)
    assert problem.line == 6 and "on_unknown is review, deny or skip, not 'approve'" in \
        problem.message


FACT_VALUES = {
    "developer.email": s.sampled_from(["a@x.com", "b@mailinator.com", "c@p.partner.example"]),
    "developer.inactive": s.booleans(),
    "billing.status": s.sampled_from(["active", "past_due", "canceled"]),
    "policy.tags": s.lists(s.sampled_from(["free", "paid", "legacy"]), max_size=2),
    "request.fields.size": s.sampled_from(["4", "40", "many"]),
}
# No `exists`: it is the one test that speaks of unknown itself, so an author can write
# "deny when billing is known, approve when not" on purpose.
LEAVES = [
    {"developer.email_domain": {"in": ["x.com", "mailinator.com"]}},
    {"developer.email_domain": {"ends_with": ".partner.example"}},
    {"developer.inactive": True},
    {"billing.status": {"in": ["active", "trialing"]}},
    {"policy.tags": {"contains": "paid"}},
    {"request.fields.size": {"as": "number", "lt": 10}},
    {"request.fields.size": {"matches": "^[0-9]+$"}},
]
conditions = s.recursive(
    s.sampled_from(LEAVES),
    lambda inner: s.one_of(
        s.lists(inner, min_size=1, max_size=3).map(lambda items: {"all": items}),
        s.lists(inner, min_size=1, max_size=3).map(lambda items: {"any": items}),
        inner.map(lambda item: {"not": item}),
    ),
    max_leaves=6,
)
WAITS = s.sampled_from(["approve", "deny", "review"]).map(
    lambda end: {"then": "wait", "wait": {"for": "billing", "timeout": "1h", "on_timeout": end}})
rule_sets = s.lists(
    s.tuples(s.fixed_dictionaries({"when": conditions,
                                   "on_unknown": s.sampled_from([None, "review", "deny",
                                                                 "skip"])}),
             s.one_of(s.sampled_from(["approve", "deny", "review"]).map(lambda o: {"then": o}),
                      WAITS)).map(lambda pair: {**pair[0], **pair[1]}),
    min_size=1, max_size=6,
)


def approves(decision) -> bool:
    """An approval now, or a wait that approves when it times out."""
    return decision.outcome == "approve" or (
        decision.outcome == "wait" and decision.wait.on_timeout == "approve")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules=rule_sets, default=s.sampled_from(["approve", "deny", "review"]),
       facts=s.fixed_dictionaries(FACT_VALUES), hidden=s.sets(s.sampled_from(list(FACT_VALUES))))
def test_making_facts_unknown_never_turns_another_outcome_into_approve(
        rules, default, facts, hidden):
    items = [{"id": f"r{i}", **{k: v for k, v in rule.items() if v is not None}}
             for i, rule in enumerate(rules)]
    ruleset = load_generated({"version": 1, "default": default, "rules": items})
    known = evaluate(ruleset, Facts.from_values(facts))
    partial = evaluate(ruleset, Facts.from_values(
        {k: v for k, v in facts.items() if k not in hidden}))
    if approves(partial):
        assert approves(known), (items, facts, hidden, partial.reason)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules=rule_sets, facts=s.fixed_dictionaries(FACT_VALUES),
       hidden=s.sets(s.sampled_from(list(FACT_VALUES))))
def test_the_compiled_rules_and_the_trace_agree_on_every_rule(rules, facts, hidden):
    # The engine decides with compiled matchers; explain, backtest and the trace walk the
    # conditions: both must come to the same true, false or unknown.
    from approver.rules.conditions import trace_rule

    items = [{"id": f"r{i}", **{k: v for k, v in rule.items() if v is not None}}
             for i, rule in enumerate(rules)]
    ruleset = load_generated({"version": 1, "rules": items})
    given_facts = Facts.from_values({k: v for k, v in facts.items() if k not in hidden})
    for rule, match in zip(ruleset.rules, ruleset.matchers, strict=True):
        traced, _ = trace_rule(rule.condition, given_facts.get, {})
        assert match(given_facts.values) is traced, (rule.id, items, facts, hidden)


# -- 3. test cases typed and checked ----------------------------------------------------------

def test_test_cases_are_checked_against_fact_names_and_types(tmp_path):
    write(tmp_path / "rules.yaml", "version: 1\nrules:\n" + CATCH_ALL)
    write(tmp_path / "tests" / "cases.yaml", """\
        cases:
          - name: gina
            facts:
              developer.emial: gina@example.com
              developer.fields.company size: 4
              developer: {inactive: 'no'}
            expect: {outcome: review}
        """)
    report = run_rule_tests(tmp_path)
    assert [(p.line, p.message) for p in report.problems] == [
        (4, "unknown fact 'developer.emial'; did you mean 'developer.email'? valid: "
            + report.problems[0].message.split("valid: ", 1)[1]),
        (5, "developer.fields.company size is text (Tyk sends form and sign-up fields as "
            "text): write '4' in quotes"),
        (6, "developer.inactive is boolean: write false without quotes"),
    ]


# -- 4. regexes that cannot hang --------------------------------------------------------------

def test_a_catastrophic_pattern_on_a_crafted_field_is_decided_at_once(tmp_path):
    ruleset = load_rules(with_catch_all(tmp_path / "r.yaml", """\
        version: 1
        rules:
          - id: only-as
            when: {request.fields.name: {matches: '^(a+)+$'}}
            then: deny
        """))
    crafted = Facts.from_values({"request.fields.name": "a" * 100_000 + "!"})
    decision = finishes(lambda: evaluate(ruleset, crafted), seconds=5)
    assert decision.rule_id == "everyone-else"


def test_patterns_re2_cannot_compile_are_refused_at_their_line(tmp_path):
    path = write(tmp_path / "r.yaml", """\
        version: 1
        rules:
          - id: a
            when:
              request.fields.x: {matches: '(a)\\1'}
              request.fields.y: {matches: '(?=look)ahead'}
            then: deny
        """)
    problems = check(path)
    assert [(p.line, p.message) for p in problems] == [
        (5, "request.fields.x: matches '(a)\\1': RE2 cannot compile '(a)\\\\1': invalid "
            "escape sequence: \\1"),
        (6, "request.fields.y: matches '(?=look)ahead': RE2 cannot compile '(?=look)ahead': "
            "invalid perl operator: (?="),
    ]


@settings(max_examples=300, deadline=None)
@given(pattern=s.from_regex(r"\^?[ab._ -]{0,4}\$?", fullmatch=True),
       text=s.text(alphabet="ab._ -\n", max_size=6))
def test_plain_text_patterns_answer_as_re2_does(pattern, text):
    import re2

    assert Pattern(pattern).search(text) == (re2.search(pattern, text) is not None)


# -- 5. YAML that cannot explode --------------------------------------------------------------

# Nine levels of nine aliases: a few hundred bytes a YAML library expands to 9**9 strings.
ALIAS_BOMB = "a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n" + "".join(
    f"{n}: &{n} [{','.join(['*' + p] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
)


def test_the_alias_bomb_is_refused_at_once(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(ALIAS_BOMB)
    assert len(ALIAS_BOMB) < 400
    [problem] = finishes(lambda: check(path), seconds=5)
    assert (problem.line, problem.message) == (1, (
        "YAML anchors and aliases (&name, *name, <<: *name) are not allowed in rule files; "
        "write the value out in full"))


def test_the_live_reload_refuses_the_alias_bomb_and_keeps_the_last_good_rules(tmp_path):
    write(tmp_path / "rules.yaml", "version: 1\nrules:\n" + CATCH_ALL)
    live = LiveRules(tmp_path, check_interval=0)
    good = live.current().revision
    (tmp_path / "rules.yaml").write_text(ALIAS_BOMB)
    assert finishes(live.reload, seconds=5).revision == good
    assert "anchors and aliases" in live.last_error[0].message


def test_files_and_rule_sets_past_the_size_limits_are_refused(tmp_path):
    big = "version: 1\nrules:\n" + "# padding\n" * 30_000
    write(tmp_path / "one" / "rules.yaml", big)
    [problem] = check(tmp_path / "one")
    assert "larger than 256 KiB, the limit for one file; split it" in problem.message
    for i in range(5):
        write(tmp_path / "many" / f"{i}.yaml", "version: 1\n" + "# padding\n" * 25_000)
    [problem] = check(tmp_path / "many")
    assert "the rule files together pass 1024 KiB, the limit" in problem.message


# -- 7. messages that teach -------------------------------------------------------------------

def test_messages_say_what_to_write(tmp_path):
    cases = [
        ("rules:\n  - id: a\n    when: {developer.company: x}\n    then: deny\n",
         "missing `version: 1`: write it as the first line of every rule file"),
        ("version: 1\nrules:\n  - id: a\n    when: {developer.company: x}\n    then: deny\n",
         "unknown fact 'developer.company'; did you mean 'developer.fields.company'?"),
        ("version: 1\nrules:\n  - id: a\n    when:\n      developer.inactive: true\n"
         "      then: deny\n", "unknown fact 'then': is `then:` indented under `when:`? "
                             "Line it up with `when:`"),
        ("version: 2\n", "version must be 1 (the only format there is), not 2"),
        ('version: 1\nrules:\n  - id: "abc\\n"\n    then: deny\n',
         "rule id 'abc\\n' may hold only letters, digits and _ . : -"),
    ]
    for text, words in cases:
        path = write(tmp_path / "r.yaml", text)
        assert any(words in p.message for p in check(path)), (text, check(path))


def test_a_missing_rules_folder_names_the_setting(tmp_path):
    [problem] = check(tmp_path / "no-such-rules")
    assert "APPROVER_RULES" in problem.message


def test_unknown_stays_unknown_through_from_values():
    assert Facts.from_values({"billing.status": None}).get("billing.status") is UNKNOWN
