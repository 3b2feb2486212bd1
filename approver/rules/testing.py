"""Rule test cases: YAML files of facts and expected decisions, run against the rules."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from approver.rules.engine import evaluate
from approver.rules.errors import Problem, RulesError
from approver.rules.loader import RULE_SUFFIXES, _dotted, _parse, load_rules
from approver.rules.registry import Registry
from approver.rules.resolver import Facts
from approver.rules.yamlsource import Located

TESTS_FOLDER = "tests"


@cache
def _validator() -> Draft202012Validator:
    text = resources.files("approver.rules").joinpath("tests_schema.json").read_text()
    return Draft202012Validator(json.loads(text))


@dataclass
class CaseResult:
    """One test case: what was expected, what the rules decided, and the trace."""

    name: str
    file: str
    line: int
    passed: bool
    expected: dict[str, Any]
    actual: dict[str, Any]
    trace: list[dict] = field(default_factory=list)

    def __str__(self) -> str:
        status = "ok" if self.passed else "FAILED"
        head = f"{self.file}:{self.line}: {self.name}: {status}"
        if self.passed:
            return head
        lines = [head]
        for key, want in self.expected.items():
            got = self.actual.get(key)
            if got != want:
                lines.append(f"    {key}: expected {want!r}, got {got!r}")
        lines.append("    trace: " + json.dumps(self.trace, indent=2).replace("\n", "\n    "))
        return "\n".join(lines)


@dataclass
class TestReport:
    """Results of a rule test run; `ok` when every case passed and no file had a problem."""

    __test__ = False  # not a pytest test class

    passed: list[CaseResult] = field(default_factory=list)
    failed: list[CaseResult] = field(default_factory=list)
    unreached: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every case passed and the rule and test files loaded."""
        return not self.failed and not self.problems

    def __str__(self) -> str:
        lines = [str(p) for p in self.problems] + [str(c) for c in self.failed]
        if self.unreached:
            lines.append("rules no case reached: " + ", ".join(self.unreached))
        total = len(self.passed) + len(self.failed)
        lines.append(f"{len(self.passed)}/{total} cases passed")
        return "\n".join(lines)


def default_tests_path(rules_path: str | Path) -> Path:
    """Where test cases live: `tests/` inside the rules folder, or beside a rules file."""
    rules_path = Path(rules_path)
    base = rules_path if rules_path.is_dir() else rules_path.parent
    return base / TESTS_FOLDER


def run_rule_tests(
    rules_path: str | Path,
    tests_path: str | Path | None = None,
    registry: Registry | None = None,
) -> TestReport:
    """Run every case in the test files against the rules at `rules_path`."""
    report = TestReport()
    try:
        ruleset = load_rules(rules_path, registry)
    except RulesError as exc:
        report.problems += exc.problems
        return report
    tests_path = Path(tests_path) if tests_path is not None else default_tests_path(rules_path)
    if tests_path.is_dir():
        files = sorted(p for p in tests_path.iterdir() if p.is_file() and p.suffix in RULE_SUFFIXES)
    elif tests_path.is_file():
        files = [tests_path]
    else:
        files = []
    if not files:
        report.problems.append(Problem(str(tests_path), 0, "no rule test files found"))
    known_ids = {rule.id for rule in ruleset.rules}
    reached: set[str] = set()
    for file in files:
        name = str(file)
        try:
            raw = file.read_bytes()
        except OSError as exc:
            report.problems.append(Problem(name, 0, f"cannot read: {exc.strerror or exc}"))
            continue
        located = _parse(name, raw, report.problems)
        if located is None:
            continue
        problems = _check(name, located, known_ids)
        report.problems += problems
        if problems:
            continue
        for index, case in enumerate(located.data["cases"]):
            result = _run_case(ruleset, case, name, located.line(("cases", index)), registry)
            (report.passed if result.passed else report.failed).append(result)
            if result.actual["rule"] is not None:
                reached.add(result.actual["rule"])
    report.unreached = [rule.id for rule in ruleset.rules if rule.id not in reached]
    return report


def _check(name: str, located: Located, known_ids: set[str]) -> list[Problem]:
    problems = []
    for error in _validator().iter_errors(located.data):
        path = tuple(error.absolute_path)
        where = _dotted(path)
        problems.append(
            Problem(
                name, located.line(path), f"{where}: {error.message}" if where else error.message
            )
        )
    if problems:
        return problems
    for index, case in enumerate(located.data["cases"]):
        rule = case["expect"].get("rule")
        if rule is not None and rule not in known_ids:
            line = located.line(("cases", index, "expect", "rule"))
            problems.append(Problem(name, line, f"expect.rule names no rule: {rule!r}"))
    return problems


def _run_case(
    ruleset: Any, case: dict, file: str, line: int, registry: Registry | None
) -> CaseResult:
    facts = Facts.from_values(case.get("facts") or {}, registry)
    decision = evaluate(ruleset, facts)
    expected = dict(case["expect"])
    actual = {"outcome": decision.outcome, "rule": decision.rule_id, "reason": decision.reason}
    passed = all(actual[key] == want for key, want in expected.items())
    return CaseResult(
        name=case["name"],
        file=file,
        line=line,
        passed=passed,
        expected=expected,
        actual=actual,
        trace=[] if passed else decision.trace,
    )
