"""Loading rule files: format, folders, revision, and problems reported as file:line."""

import json
import subprocess
import sys
from importlib import resources

import pytest
from jsonschema import Draft202012Validator

from approver.errors import ApproverError
from approver.rules import Problem, RulesError, check, load_rules
from tests.rules_support import write

SPEC_EXAMPLE = """\
version: 1
default: review
rules:
  - id: deny-disposable-email
    description: optional text
    when:
      developer.email_domain: {in: [mailinator.com, guerrillamail.com]}
    then: deny
    reason: "{developer.email_domain} is not accepted"
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
    then: approve
"""


def problems_of(path):
    """The problems `load_rules` raises for `path`."""
    with pytest.raises(RulesError) as info:
        load_rules(path)
    return info.value.problems


def test_spec_example_loads_in_order_with_wait_spec(tmp_path):
    ruleset = load_rules(write(tmp_path / "rules.yaml", SPEC_EXAMPLE))
    assert [r.id for r in ruleset.rules] == [
        "deny-disposable-email",
        "paid-plans-need-billing",
        "partners",
    ]
    assert ruleset.default == "review"
    wait = ruleset.rules[1].wait
    assert (wait.for_, wait.timeout_seconds, wait.on_timeout) == ("billing", 72 * 3600, "deny")
    assert ruleset.files == (str(tmp_path / "rules.yaml"),)
    assert len(ruleset.revision) == 12
    int(ruleset.revision, 16)


def test_folder_loads_files_in_name_order_and_skips_tests_folder(tmp_path):
    write(tmp_path / "20-b.yml", "version: 1\nrules: [{id: b, then: approve}]\n")
    write(tmp_path / "10-a.yaml", "version: 1\nrules: [{id: a, then: deny}]\n")
    write(tmp_path / "notes.txt", "not rules")
    write(tmp_path / "tests" / "cases.yaml", "cases: []\n")
    ruleset = load_rules(tmp_path)
    assert [r.id for r in ruleset.rules] == ["a", "b"]
    assert [f.rsplit("/", 1)[1] for f in ruleset.files] == ["10-a.yaml", "20-b.yml"]


def test_default_comes_from_first_file_that_sets_one(tmp_path):
    write(tmp_path / "a.yaml", "version: 1\nrules: []\n")
    write(tmp_path / "b.yaml", "version: 1\ndefault: deny\n")
    write(tmp_path / "c.yaml", "version: 1\ndefault: deny\n")
    assert load_rules(tmp_path).default == "deny"


def test_default_is_review_when_no_file_sets_one(tmp_path):
    assert load_rules(write(tmp_path / "r.yaml", "version: 1\n")).default == "review"


def test_conflicting_defaults_are_an_error_at_the_second(tmp_path):
    write(tmp_path / "a.yaml", "version: 1\ndefault: review\n")
    write(tmp_path / "b.yaml", "version: 1\n\ndefault: deny\n")
    [problem] = problems_of(tmp_path)
    assert problem.file.endswith("b.yaml") and problem.line == 3
    assert "conflicts with 'review'" in problem.message


def test_revision_changes_with_content_and_is_stable(tmp_path):
    path = write(tmp_path / "r.yaml", "version: 1\nrules: [{id: a, then: deny}]\n")
    first = load_rules(path).revision
    assert load_rules(path).revision == first
    write(path, "version: 1\nrules: [{id: a, then: approve}]\n")
    assert load_rules(path).revision != first


def test_rules_error_is_an_approver_error_with_file_line_strings(tmp_path):
    path = write(tmp_path / "r.yaml", "version: 2\n")
    with pytest.raises(ApproverError) as info:
        load_rules(path)
    [problem] = info.value.problems
    assert str(problem) == f"{path}:1: {problem.message}"
    assert str(Problem("f.yaml", 3, "boom")) == "f.yaml:3: boom"


def test_every_problem_is_reported_with_its_line(tmp_path):
    path = write(
        tmp_path / "bad.yaml",
        """\
        version: 1
        rules:
          - id: a
            when:
              developer.emial_domain: x.com
              request.policies: {contain_any: [x]}
              request.fields.x: {matches: "([a"}
            then: deny
          - id: b
            then: wait
          - id: c
            then: wait
            wait: {for: billing, timeout: 3 days, on_timeout: deny}
            reson: x
        """,
    )
    problems = check(path)
    lines = {p.line: p.message for p in problems}
    assert sorted(lines) == [5, 6, 7, 9, 13, 14]
    assert "unknown fact 'developer.emial_domain'" in lines[5]
    assert "unknown operator 'contain_any'" in lines[6]
    assert "RE2 cannot compile '([a': missing ]" in lines[7]
    assert "'wait' is a required property" in lines[9]
    assert "bad duration '3 days'" in lines[13]
    assert "unexpected key 'reson'" in lines[14]
    assert problems_of(path) == problems


def test_unknown_fact_lists_valid_facts_closest_first(tmp_path):
    path = write(
        tmp_path / "r.yaml",
        "version: 1\nrules:\n  - id: a\n    when: {developer.emial: x}\n    then: deny\n",
    )
    [problem] = check(path)
    assert problem.line == 4
    valid = problem.message.split("valid: ", 1)[1].split(", ")
    assert valid[0] == "developer.email"
    assert "request.fields.<name>" in valid and "billing.status" in valid


def test_unknown_operator_lists_valid_operators_closest_first(tmp_path):
    path = write(
        tmp_path / "r.yaml",
        "version: 1\nrules:\n  - id: a\n    when: {developer.email: {ends: x}}\n    then: deny\n",
    )
    [problem] = check(path)
    valid = problem.message.split("valid: ", 1)[1].split(", ")
    assert valid[0] == "ends_with"
    assert set(valid) >= {"eq", "matches", "exists", "contains_all"}


def test_duplicate_rule_ids_across_files_are_an_error(tmp_path):
    write(tmp_path / "a.yaml", "version: 1\nrules:\n  - id: same\n    then: deny\n")
    write(
        tmp_path / "b.yaml",
        "version: 1\nrules:\n  - {id: other, then: deny}\n  - id: same\n    then: approve\n",
    )
    [problem] = problems_of(tmp_path)
    assert problem.file.endswith("b.yaml") and problem.line == 4
    assert "duplicate rule id 'same'" in problem.message and "a.yaml:3" in problem.message


@pytest.mark.parametrize(
    ("timeout", "seconds"),
    [("72h", 259200), ("30m", 1800), ("2d", 172800), ("90s", 90), ("1h30m", 5400), (600, 600)],
)
def test_wait_durations_are_parsed(tmp_path, timeout, seconds):
    path = write(
        tmp_path / "r.yaml",
        f"version: 1\nrules:\n  - id: w\n    then: wait\n"
        f"    wait: {{for: billing, timeout: {timeout}, on_timeout: review}}\n",
    )
    assert load_rules(path).rules[0].wait.timeout_seconds == seconds


@pytest.mark.parametrize("timeout", ["0s", "3 days", "h", "-5m", "1w"])
def test_bad_durations_are_rejected(tmp_path, timeout):
    path = write(
        tmp_path / "r.yaml",
        f"version: 1\nrules:\n  - id: w\n    then: wait\n"
        f"    wait: {{for: billing, timeout: '{timeout}', on_timeout: deny}}\n",
    )
    [problem] = check(path)
    assert problem.line == 5 and "bad duration" in problem.message


def test_wait_needs_then_wait(tmp_path):
    path = write(
        tmp_path / "r.yaml",
        "version: 1\nrules:\n  - id: w\n    then: deny\n"
        "    wait: {for: billing, timeout: 1h, on_timeout: deny}\n",
    )
    [problem] = check(path)
    assert problem.line == 5 and "only allowed with then: wait" in problem.message


def test_wait_needs_all_three_keys(tmp_path):
    path = write(
        tmp_path / "r.yaml",
        "version: 1\nrules:\n  - id: w\n    then: wait\n    wait: {for: billing, timeout: 1h}\n",
    )
    [problem] = check(path)
    assert problem.line == 5 and "'on_timeout' is a required property" in problem.message


def test_yaml_syntax_error_points_at_its_line(tmp_path):
    path = write(tmp_path / "r.yaml", "version: 1\nrules:\n  - id: a\n    then: [deny\n")
    [problem] = check(path)
    assert problem.line >= 4 and problem.message.startswith("YAML syntax")


def test_duplicate_yaml_keys_are_reported(tmp_path):
    path = write(
        tmp_path / "r.yaml", "version: 1\nrules:\n  - id: a\n    then: deny\n    then: approve\n"
    )
    [problem] = check(path)
    assert problem.line == 5 and "duplicate key 'then'" in problem.message


def test_empty_file_and_empty_folder_are_problems(tmp_path):
    write(tmp_path / "empty.yaml", "# nothing here\n")
    assert "empty file" in check(tmp_path / "empty.yaml")[0].message
    (tmp_path / "none").mkdir()
    assert "no *.yaml" in check(tmp_path / "none")[0].message


def test_missing_path_is_a_problem_not_a_crash(tmp_path):
    [problem] = check(tmp_path / "nope")
    assert problem.line == 0
    assert problem.message == (
        "no such file or folder; the service reads its rules from APPROVER_RULES (a file or a "
        "folder)")


def test_unknown_fact_in_reason_template_is_an_error(tmp_path):
    path = write(
        tmp_path / "r.yaml",
        "version: 1\nrules:\n  - id: a\n    then: deny\n    reason: 'bad {developer.emai}'\n",
    )
    [problem] = check(path)
    assert problem.line == 5 and "did you mean 'developer.email'" in problem.message


@pytest.mark.parametrize(
    ("condition", "words"),
    [
        ("{developer.email: {in: x.com}}", "expects a list of values"),
        ("{developer.key_count: {gt: lots}}", "write a number like 10, not 'lots'"),
        ("{developer.email: {exists: maybe}}", "expects true or false"),
        ("{developer.email: null}", "use {exists: false}"),
        ("{developer.email: {}}", "no operator"),
        ("{any: []}", "non-empty list"),
        ("[a, b]", "must be a mapping"),
    ],
)
def test_bad_operator_arguments_are_rejected_at_load(tmp_path, condition, words):
    path = write(
        tmp_path / "r.yaml",
        f"version: 1\nrules:\n  - id: a\n    when: {condition}\n    then: deny\n",
    )
    problems = check(path)
    assert problems and all(p.line == 4 for p in problems)
    assert any(words in p.message for p in problems), problems


def test_shipped_schema_is_valid_draft_2020_12():
    text = resources.files("approver.rules").joinpath("schema.json").read_text()
    schema = json.loads(text)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def test_rules_package_imports_no_web_queue_or_http_library():
    code = (
        "import sys, approver.rules as r; r.default_registry(); "
        "top = {m.split('.')[0] for m in sys.modules}; "
        "print(sorted(top & {'flask', 'rq', 'redis', 'requests'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_message_for_the_developer_is_plain_text_checked_at_its_line(tmp_path):
    rule = "version: 1\nrules:\n  - id: a\n    then: deny\n    message: {}\n"
    assert load_rules(write(tmp_path / "ok.yaml", rule.format(
        "Use a work address, please."))).rules[0].message == "Use a work address, please."
    for message, words in [
        ("'Sorry {developer.email}'", "no {fact} placeholders"),
        ('"two\\nlines"', "one line of plain text"),
        ("''", "message"),
        ("'" + "x" * 501 + "'", "message"),
        ("[a, list]", "message"),
    ]:
        problems = check(write(tmp_path / "r.yaml", rule.format(message)))
        assert [p.line for p in problems] == [5] and words in problems[0].message, (
            message, problems)
