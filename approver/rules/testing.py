"""Rule test cases: YAML files of facts and expected decisions, run against the rules."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from approver.rules.engine import Decision, evaluate
from approver.rules.errors import Problem, RulesError
from approver.rules.explain import trace_lines
from approver.rules.loader import RULE_SUFFIXES, _dotted, _parse, load_rules, read_limited
from approver.rules.registry import Registry
from approver.rules.resolver import Facts
from approver.rules.types import argument
from approver.rules.vocabulary import default_registry
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
    decision: Decision | None = field(default=None, repr=False)

    @property
    def trace(self) -> list[dict]:
        """The trace of the decision (a failed case only)."""
        return self.decision.trace if self.decision is not None else []

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
        if self.decision is not None:
            if self.expected.get("reason", self.actual["reason"]) == self.actual["reason"]:
                lines.append(f"    reason: {self.decision.reason}")
            lines += ["    " + line if line else "" for line in trace_lines(self.decision)]
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
    registry = registry if registry is not None else default_registry()
    known_ids = {rule.id for rule in ruleset.rules}
    reached: set[str] = set()
    for file in files:
        name = str(file)
        raw = read_limited(file, report.problems)
        located = None if raw is None else _parse(name, raw, report.problems)
        if located is None:
            continue
        problems = check_cases(name, located, registry, known_ids)
        report.problems += problems
        if problems:
            continue
        common = _dotted_facts(located.data.get("facts"))
        for index, case in enumerate(located.data["cases"]):
            case = {**case, "facts": {**common, **_dotted_facts(case.get("facts"))}}
            result = _run_case(ruleset, case, name, located.line(("cases", index)), registry)
            (report.passed if result.passed else report.failed).append(result)
            if result.actual["rule"] is not None:
                reached.add(result.actual["rule"])
    report.unreached = [rule.id for rule in ruleset.rules if rule.id not in reached]
    return report


def check_cases(
    name: str, located: Located, registry: Registry, known_ids: set[str] | None = None
) -> list[Problem]:
    """Problems in a test file: its shape, fact names and value types, and rule ids."""
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
    facts = [(("facts",), located.data.get("facts") or {})] + [
        (("cases", i, "facts"), case.get("facts") or {})
        for i, case in enumerate(located.data["cases"])
    ]
    for path, given in facts:
        for fact_path, value in _flat(given, path):
            message = _fact_problem(registry, ".".join(map(str, fact_path[len(path):])), value)
            if message:
                problems.append(Problem(name, located.line(fact_path), message))
    for index, case in enumerate(located.data["cases"]):
        rule = case["expect"].get("rule")
        if known_ids is not None and rule is not None and rule not in known_ids:
            line = located.line(("cases", index, "expect", "rule"))
            problems.append(Problem(name, line, f"expect.rule names no rule: {rule!r}"))
    return problems


def _flat(mapping: dict, path: tuple) -> list[tuple[tuple, Any]]:
    """(path, value) of every leaf of nested fact mappings: `{developer: {email: x}}`."""
    out = []
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            out += _flat(value, (*path, key))
        else:
            out.append(((*path, key), value))
    return out


def _dotted_facts(mapping: dict | None) -> dict[str, Any]:
    return {".".join(map(str, path)): value for path, value in _flat(mapping or {}, ())}


def _fact_problem(registry: Registry, name: str, value: Any) -> str | None:
    found = registry.lookup_fact(name)
    if found is None:
        return f"unknown fact {name!r}; {registry.suggest_fact(name)}"
    definition = found[0]
    if value is None:
        return None  # null: the fact is unknown
    try:
        argument(definition.type, value)
    except TypeError as exc:
        hint = f" ({definition.hint})" if definition.hint else ""
        return f"{name} is {definition.type}{hint}: {exc}"
    return None


def _as_written(step: dict) -> dict:
    """An expected step as `Step.to_dict` records it."""
    for key in ("validator", "email"):
        if key in step:
            return {key: step[key]}
    return {"group": step.get("group"), "count": step.get("count", 1)}


def _run_case(
    ruleset: Any, case: dict, file: str, line: int, registry: Registry | None
) -> CaseResult:
    facts = Facts.from_values(case.get("facts") or {}, registry)
    decision = evaluate(ruleset, facts)
    expected = dict(case["expect"])
    if "steps" in expected:  # as written in a rule: a group's count is 1 when not given
        expected["steps"] = [_as_written(s) for s in expected["steps"]]
    actual = {"outcome": decision.outcome, "rule": decision.rule_id, "reason": decision.reason,
              "steps": [step.to_dict() for step in decision.approvals]}
    passed = all(actual[key] == want for key, want in expected.items())
    return CaseResult(
        name=case["name"],
        file=file,
        line=line,
        passed=passed,
        expected=expected,
        actual=actual,
        decision=None if passed else decision,
    )
