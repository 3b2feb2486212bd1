"""`evaluate(ruleset, facts) -> Decision`: first matching rule wins, else the default."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import Any

from approver.rules.conditions import trace_rule
from approver.rules.resolver import Facts
from approver.rules.ruleset import Rule, RuleSet, WaitSpec
from approver.rules.values import to_json, to_text


@dataclass(frozen=True)
class Decision:
    """The outcome for one key request, the rule behind it, and how it was reached.

    `trace` and `facts` are built on first access, so deciding stays cheap.
    """

    outcome: str
    rule_id: str | None
    reason: str
    wait: WaitSpec | None = None
    revision: str = ""
    trace_fn: Callable[[], list] = field(default=list, repr=False, compare=False)
    facts_fn: Callable[[], dict] = field(default=dict, repr=False, compare=False)
    notes: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @cached_property
    def trace(self) -> list[dict]:
        """Per rule tried, in order: its id, whether it matched, and its conditions."""
        return self.trace_fn()

    @cached_property
    def facts(self) -> dict[str, Any]:
        """The facts resolved while deciding (JSON-friendly; unknown is null)."""
        return self.facts_fn()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Decision:
        """Rebuild a Decision from `to_dict()` output (e.g. read back from the decision log)."""
        wait = data.get("wait")
        return cls(
            outcome=data["outcome"],
            rule_id=data.get("rule_id"),
            reason=data.get("reason", ""),
            wait=WaitSpec(wait["for"], wait["timeout_seconds"], wait["on_timeout"])
            if wait
            else None,
            revision=data.get("revision", ""),
            trace_fn=partial(_given, data.get("trace") or []),
            facts_fn=partial(_given, data.get("facts") or {}),
            notes=dict(data.get("notes") or {}),
        )

    def __reduce__(self) -> tuple:
        # The lazy builders are closures; pickling (e.g. into an RQ result) stores the data.
        return (Decision.from_dict, (self.to_dict(),))

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form, as recorded in the decision log."""
        return {
            "outcome": self.outcome,
            "rule_id": self.rule_id,
            "reason": self.reason,
            "wait": self.wait.to_dict() if self.wait else None,
            "revision": self.revision,
            "trace": self.trace,
            "facts": self.facts,
            "notes": dict(self.notes),
        }


def evaluate(ruleset: RuleSet, facts: Facts) -> Decision:
    """Try the rules in order; the first whose condition holds (not unknown) decides."""
    values = facts.values
    matched: Rule | None = None
    tried = 0
    for match in ruleset.matchers:
        tried += 1
        if match(values) is True:
            matched = ruleset.rules[tried - 1]
            break
    get = facts.get
    if matched is None:
        outcome, rule_id, wait = ruleset.default, None, None
        reason = f"No rule matched; default is {ruleset.default}."
    else:
        outcome, rule_id, wait = matched.outcome, matched.id, matched.wait
        reason = _render(matched, get) if matched.reason_parts else f"Matched rule {matched.id}."
    # Snapshot now: the trace re-reads only facts already cached, so it matches this decision.
    snapshot = dict(facts.values)
    notes = dict(facts.notes)
    rules = ruleset.rules[:tried]
    return Decision(
        outcome=outcome,
        rule_id=rule_id,
        reason=reason,
        wait=wait,
        revision=ruleset.revision,
        trace_fn=lambda: _trace(rules, get, notes),
        facts_fn=lambda: {name: to_json(value) for name, value in snapshot.items()},
        notes=notes,
    )


def _given(value: Any) -> Any:
    return value


def _render(rule: Rule, get: Callable[[str], Any]) -> str:
    return "".join(
        value if kind == "text" else to_text(get(value)) for kind, value in rule.reason_parts
    )


def _trace(rules: tuple[Rule, ...], get: Callable[[str], Any], notes: dict[str, str]) -> list[dict]:
    trace = []
    for rule in rules:
        result, conditions = trace_rule(rule.condition, get, notes)
        trace.append({"rule": rule.id, "matched": result, "conditions": conditions})
    return trace
