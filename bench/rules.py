"""Rule evaluation per second for 10, 100 and 1,000 rules (the rules engine alone, no I/O).

Generated rule files mix the shipped rules' operators (`in` lists, `ends_with`, `matches`,
`contains`, plain equality, `any`, `not`) over the facts the shipped rules use. None of
them matches the facts evaluated, so every evaluation tries every rule and falls to the
default: the worst case for a rule set of that size. Each evaluation builds fresh `Facts`
(as each decision does), so fact resolution is counted; the trace is not rendered.

With steps (`measure_steps`): at 100 rules every `review` rule carries `approvals:` and a
`deadline:`, and a last rule with steps matches, so each evaluation tries them all and
ends in a decision carrying its steps.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import yaml

SIZES = (10, 100, 1000)
STEPS_SIZE = 100
APPROVALS = [{"validator": "crm"}, {"group": "security"},
             {"group": "payments-owners", "count": 2}]
DEADLINE = {"remind_after": "4h", "escalate_after": "1d", "escalate_to": "api-leads",
            "expire_after": "14d", "on_expire": "deny"}
FACTS = {
    "developer": {"email": "dana@example.org", "inactive": False},
    "request": {"fields": {"company": "Example Ltd", "use_case": "billing sync"}},
    "policy": {"tags": ["free"], "names": ["Free"]},
}


def _condition(i: int) -> dict:
    kind = i % 5
    if kind == 0:
        return {"developer.email_domain": {"in": [f"blocked{i}-{j}.example" for j in range(8)]}}
    if kind == 1:
        return {"developer.email_domain": {"ends_with": f".partner{i}.example"}}
    if kind == 2:
        return {"request.fields.company": {"matches": f"^Corp{i}( |$)"},
                "developer.email_domain": f"corp{i}.example"}
    if kind == 3:
        return {"policy.tags": {"contains": f"tag{i}"}, "not": {"developer.inactive": True}}
    return {"any": [{"request.fields.use_case": {"matches": f"^never{i}$"}},
                    {"developer.email_domain": f"x{i}.example"}]}


def _steps() -> dict:
    # Copies: YAML would write shared objects as aliases, which rule files refuse.
    return {"approvals": [dict(step) for step in APPROVALS], "deadline": dict(DEADLINE)}


def write_rules(directory: Path, count: int, steps: bool = False) -> Path:
    """A rule file of `count` rules that do not match FACTS (with `steps`: review rules
    carry approvals and a deadline, and a last one with steps matches)."""
    rules = [
        {"id": f"rule-{i}", "description": f"generated rule {i}", "when": _condition(i),
         "then": ("approve", "deny", "review")[i % 3],
         "reason": f"Rule {i} matched {{developer.email_domain}}."}
        for i in range(count - 1 if steps else count)
    ]
    if steps:
        for rule in rules:
            if rule["then"] == "review":
                rule.update(_steps())
        rules.append({"id": "owners-decide", "when": {"policy.tags": {"contains": "free"}},
                      "then": "review", "reason": "Owners decide.", **_steps()})
    path = directory / "rules.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "default": "review", "rules": rules}))
    return path


def _rate(fn, seconds: float) -> float:
    count = 0
    began = time.perf_counter()
    stop = began + seconds
    while True:
        for _ in range(50):
            fn()
        count += 50
        now = time.perf_counter()
        if now >= stop:
            return count / (now - began)


def measure(seconds: float = 1.0, runs: int = 3) -> dict:
    """{size: {"rate": evaluations/s (median of runs), "facts_rate": Facts built/s}}."""
    from approver.rules import Facts, evaluate, load_rules

    results = {}
    for size in SIZES:
        with tempfile.TemporaryDirectory(prefix="approver-bench-rules-") as tmp:
            write_rules(Path(tmp), size)
            ruleset = load_rules(tmp)
        decision = evaluate(ruleset, Facts.from_values(FACTS))
        if decision.rule_id is not None or len(decision.trace) != size:
            raise RuntimeError(f"generated rules should all be tried: {decision.rule_id}")
        rates = [_rate(lambda rs=ruleset: evaluate(rs, Facts.from_values(FACTS)), seconds)
                 for _ in range(runs)]
        results[size] = {"rate": statistics.median(rates), "runs": rates}
    facts_rate = _rate(lambda: Facts.from_values(FACTS), seconds / 2)
    return {"sizes": results, "facts_rate": facts_rate}


def measure_steps(seconds: float = 1.0, runs: int = 3) -> dict:
    """{"rate": evaluations/s (median of runs), "runs": [...]} at STEPS_SIZE rules with
    steps, the last one matching."""
    from approver.rules import Facts, evaluate, load_rules

    with tempfile.TemporaryDirectory(prefix="approver-bench-rules-") as tmp:
        write_rules(Path(tmp), STEPS_SIZE, steps=True)
        ruleset = load_rules(tmp)
    decision = evaluate(ruleset, Facts.from_values(FACTS))
    if decision.rule_id != "owners-decide" or len(decision.approvals) != len(APPROVALS):
        raise RuntimeError(f"the last rule, with steps, should decide: {decision.rule_id}")
    rates = [_rate(lambda: evaluate(ruleset, Facts.from_values(FACTS)), seconds)
             for _ in range(runs)]
    return {"rate": statistics.median(rates), "runs": rates}
