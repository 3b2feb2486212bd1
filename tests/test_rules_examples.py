"""Every ```yaml block in README.md and docs/ is a valid rule file or test case file."""

import re

import pytest

from approver.rules import check, default_registry, run_rule_tests
from approver.rules.loader import _parse
from approver.rules.testing import check_cases
from tests.conftest import ROOT

FENCE = re.compile(r"^```yaml[ \t]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks():
    """(document, block number, line, text) for every ```yaml block, in order."""
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for number, match in enumerate(FENCE.finditer(text), 1):
            line = text.count("\n", 0, match.start(1)) + 1
            yield doc.relative_to(ROOT), number, line, match.group(1)


def where(doc, number, line):
    return (f"{doc}, ```yaml block {number} (line {line}): every ```yaml block in README.md "
            f"and docs/ must be a complete rule file or test case file; fence other YAML "
            f"as ```text")


@pytest.mark.parametrize(("doc", "number", "line", "text"),
                         list(blocks()), ids=lambda v: str(v) if not isinstance(v, str) else "")
def test_yaml_example_is_a_rule_file_or_test_cases(tmp_path, doc, number, line, text):
    located = _parse(str(doc), text.encode(), problems := [])
    assert located is not None and isinstance(located.data, dict), (where(doc, number, line),
                                                                      problems)
    if "cases" in located.data:
        problems = check_cases(str(doc), located, default_registry())
        assert not problems, (where(doc, number, line), [str(p) for p in problems])
        return
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    problems = check(path)
    assert not problems, (where(doc, number, line), [str(p) for p in problems])


def test_test_case_examples_pass_against_the_rule_file_above_them(tmp_path):
    """Each test case example runs against the nearest rule file example before it."""
    rules = None
    ran = 0
    for doc, number, line, text in blocks():
        if re.search(r"^cases:", text, re.MULTILINE):
            assert rules is not None and rules[0] == doc, where(doc, number, line)
            (tmp_path / "rules.yaml").write_text(rules[1])
            (tmp_path / "cases.yaml").write_text(text)
            report = run_rule_tests(tmp_path / "rules.yaml", tmp_path / "cases.yaml")
            assert report.ok, f"{where(doc, number, line)}\n{report}"
            ran += 1
        else:
            rules = (doc, text)
    assert ran >= 5
