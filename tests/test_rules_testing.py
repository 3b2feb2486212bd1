"""The rule test runner: cases next to the rules, failures with traces, unreached rules."""


from approver.rules import TestReport, run_rule_tests
from tests.rules_support import write

RULES = """\
version: 1
default: review
rules:
  - id: deny-disposable-email
    when:
      developer.email_domain: {in: [mailinator.com, guerrillamail.com]}
    then: deny
    reason: "{developer.email_domain} is not accepted"
  - id: paid-plans-need-billing
    when:
      request.policies: {contains_any: [pol-pro]}
      billing.status: {not_in: [active, trialing]}
    then: wait
    wait: {for: billing, timeout: 72h, on_timeout: deny}
  - id: partners
    when:
      request.fields.company: {matches: "^ACME( |$)"}
    then: approve
"""


def test_passing_cases_and_unreached_rules(tmp_path):
    write(tmp_path / "rules.yaml", RULES)
    write(
        tmp_path / "tests" / "cases.yaml",
        """\
        cases:
          - name: disposable email is denied
            facts: {developer.email: bob@mailinator.com, request.policies: [p1]}
            expect:
              outcome: deny
              rule: deny-disposable-email
              reason: mailinator.com is not accepted
          - name: ACME is approved
            facts:
              developer.email: a@acme.example
              request: {policies: [p1], fields: {company: ACME Ltd}}
            expect: {outcome: approve, rule: partners}
          - name: nothing known goes to review
            facts: {}
            expect: {outcome: review, rule: deny-disposable-email}
        """,
    )
    report = run_rule_tests(tmp_path)
    assert report.ok, str(report)
    assert [c.name for c in report.passed] == [
        "disposable email is denied",
        "ACME is approved",
        "nothing known goes to review",
    ]
    assert report.unreached == ["paid-plans-need-billing"]
    assert "3/3 cases passed" in str(report)


def test_failed_case_shows_expected_actual_and_trace(tmp_path):
    write(tmp_path / "rules.yaml", RULES)
    write(
        tmp_path / "tests" / "cases.yaml",
        """\
        cases:
          - name: partner gets approved
            facts: {developer.email: a@x.com, request.fields.company: Other,
                    request.policies: [p1]}
            expect: {outcome: approve, rule: partners}
        """,
    )
    report = run_rule_tests(tmp_path)
    assert not report.ok
    [failure] = report.failed
    assert failure.line == 2
    assert failure.expected == {"outcome": "approve", "rule": "partners"}
    assert failure.actual["outcome"] == "review" and failure.actual["rule"] is None
    assert [entry["rule"] for entry in failure.trace] == [
        "deny-disposable-email",
        "paid-plans-need-billing",
        "partners",
    ]
    assert str(failure).splitlines()[1:] == [
        "    outcome: expected 'approve', got 'review'",
        "    rule: expected 'partners', got None",
        "    reason: No rule matched; default is review.",
        "    ✗ rule deny-disposable-email: no match",
        '        ✗ developer.email_domain = "x.com"  in ["mailinator.com", "guerrillamail.com"]',
        "    ✗ rule paid-plans-need-billing: no match",
        '        ✗ request.policies = ["p1"]  contains_any ["pol-pro"]',
        "    ✗ rule partners: no match",
        '        ✗ request.fields.company = "Other"  matches "^ACME( |$)"',
    ]


def test_problems_in_test_files_are_reported_with_lines(tmp_path):
    write(tmp_path / "rules.yaml", RULES)
    write(
        tmp_path / "tests" / "bad.yaml",
        """\
        cases:
          - name: typo in expect
            expect: {outcome: deny, rule: no-such-rule}
          - name: unknown key
            facts: {}
            expect: {outcome: approved}
        """,
    )
    report = run_rule_tests(tmp_path)
    assert not report.ok
    assert [(p.line, "outcome" in p.message) for p in report.problems] == [(6, True)]
    write(
        tmp_path / "tests" / "bad.yaml",
        "cases:\n  - name: typo\n    expect: {outcome: deny, rule: no-such-rule}\n",
    )
    [problem] = run_rule_tests(tmp_path).problems
    assert problem.line == 3 and "no-such-rule" in problem.message


def test_rule_problems_are_reported_not_raised(tmp_path):
    write(tmp_path / "rules.yaml", "version: 1\nrules:\n  - id: a\n    then: nope\n")
    report = run_rule_tests(tmp_path)
    assert not report.ok and report.problems[0].line == 4


def test_explicit_tests_path_and_rules_file(tmp_path):
    rules = write(tmp_path / "rules.yaml", RULES)
    cases = write(
        tmp_path / "elsewhere.yaml",
        "cases:\n  - name: c\n    facts: {billing.status: canceled, request.policies: [pol-pro],\n"
        "            developer.email: a@x.com}\n"
        "    expect: {outcome: wait}\n",
    )
    report = run_rule_tests(rules, cases)
    assert report.ok and report.unreached == ["deny-disposable-email", "partners"]


def test_missing_tests_folder_is_a_problem(tmp_path):
    write(tmp_path / "rules.yaml", RULES)
    report = run_rule_tests(tmp_path)
    assert not report.ok and "no rule test files" in report.problems[0].message


def test_report_class_is_not_collected_by_pytest():
    assert TestReport.__test__ is False
