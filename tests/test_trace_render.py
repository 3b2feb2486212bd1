"""One account of a trace: the console draws the very tree `approver rules explain` prints,
for every shipped rule file and for generated rule sets."""

import json

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as s

from approver import cli
from approver.rules import Facts, evaluate, explain, load_rules
from tests.conftest import ROOT
from tests.rules_support import load_generated
from tests.test_console_story import page_tree
from tests.test_rules_failsafe import FACT_VALUES, rule_sets

SHIPPED = sorted((ROOT / "rules").glob("*.yaml"))
CASES = yaml.safe_load((ROOT / "rules" / "tests" / "shipped.yaml").read_text())


@pytest.fixture
def console_tree(app):
    """The console's trace macro, drawn as the request page draws it, read back as text."""
    with app.app_context():
        macro = app.jinja_env.get_template("console/_trace.html").module.tree
        yield lambda trace: page_tree(str(macro(explain.steps(trace))))


def stored(trace: list) -> list:
    """A trace as the console reads it back from Redis (JSON)."""
    return json.loads(json.dumps(trace))


def walk(entries):
    """Every condition of a trace, groups and leaves."""
    for entry in entries:
        yield entry
        for key in ("all", "any"):
            yield from walk(entry.get(key) or [])
        if "not" in entry:
            yield from walk([entry["not"]])


def assert_complete(lines: list[str], trace: list) -> None:
    """Every rule and condition is drawn with its mark; unknowns with their cause; `as:`."""
    text = "\n".join(lines)
    for rule in trace:
        assert f"rule {rule['rule']}:" in text
        for item in walk(rule["conditions"]):
            if "fact" in item:
                assert item["fact"] in text
                if "as" in item:
                    assert f" as {item['as']} " in text
                if item.get("note"):
                    assert f"({item['note']})" in text
            else:
                word = next(k for k in ("all", "any", "not") if k in item)
                assert f"{word} of:" in text or f"{word}:" in text
    assert all(line.lstrip()[0] in "✓✗?" for line in lines)


@pytest.mark.parametrize("path", [*SHIPPED, ROOT / "rules"], ids=lambda p: p.name)
@pytest.mark.parametrize("case", CASES["cases"], ids=lambda c: c["name"][:40])
def test_the_console_draws_the_trace_the_cli_prints_for_the_shipped_rules(
        path, case, console_tree, capsys, tmp_path):
    facts = {**CASES.get("facts", {}), **case["facts"]}
    given_facts = tmp_path / "facts.json"
    given_facts.write_text(json.dumps(facts, default=str))
    assert cli.main(["rules", "explain", "--rules", str(path), "--file", str(given_facts)]) == 0
    printed = capsys.readouterr().out.split("\n\n")[1].splitlines()  # after the header
    decision = evaluate(load_rules(path), Facts.from_values(facts))
    drawn = console_tree(stored(decision.trace))
    assert drawn == printed
    assert_complete(drawn, decision.trace)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(rules=rule_sets, facts=s.fixed_dictionaries(FACT_VALUES),
       hidden=s.sets(s.sampled_from(list(FACT_VALUES))))
def test_the_console_draws_the_trace_the_cli_prints_for_generated_rules(
        console_tree, rules, facts, hidden):
    items = [{"id": f"r{i}", **{k: v for k, v in rule.items() if v is not None}}
             for i, rule in enumerate(rules)]
    ruleset = load_generated({"version": 1, "rules": items})
    decision = evaluate(ruleset, Facts.from_values(
        {k: v for k, v in facts.items() if k not in hidden}))
    printed = explain.render(decision).split("\n\n")[1].splitlines()
    drawn = console_tree(stored(decision.trace))
    assert drawn == printed
    assert_complete(drawn, decision.trace)
