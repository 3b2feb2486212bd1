"""`evaluate(ruleset, facts) -> Decision`: first matching rule wins, else the default."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property, partial
from typing import Any

from approver.rules.conditions import trace_rule
from approver.rules.grants import Grant, grant_from
from approver.rules.resolver import Facts
from approver.rules.ruleset import (
    Deadline,
    Rule,
    RuleSet,
    Step,
    WaitSpec,
    deadline_from,
    steps_from,
)
from approver.rules.values import to_text


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
    # The deciding rule's `message` for the developer; "" means the outcome's default.
    message: str = ""
    # What a person must do before a review is approved (the deciding rule's), and by when.
    approvals: tuple[Step, ...] = ()
    deadline: Deadline | None = None
    # An approval's period of access (the deciding approve rule's).
    grant: Grant | None = None
    trace_fn: Callable[[], list] = field(default=list, repr=False, compare=False)
    facts_fn: Callable[[], dict] = field(default=dict, repr=False, compare=False)
    notes: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @cached_property
    def trace(self) -> list[dict]:
        """Per rule tried, in order: its id, whether it matched, and its conditions."""
        return self.trace_fn()

    @cached_property
    def facts(self) -> dict[str, Any]:
        """Every fact the rules could read for this request (JSON-friendly; unknown is null).

        What a backtest replays: not only the facts this decision's rules read.
        """
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
            message=data.get("message") or "",
            approvals=steps_from(data.get("approvals")),
            deadline=deadline_from(data.get("deadline")),
            grant=grant_from(data.get("grant")),
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
            "message": self.message,
            "approvals": [step.to_dict() for step in self.approvals],
            "deadline": self.deadline.to_dict() if self.deadline else None,
            "grant": self.grant.to_dict() if self.grant else None,
            "trace": self.trace,
            "facts": self.facts,
            "notes": dict(self.notes),
        }


def evaluate(ruleset: RuleSet, facts: Facts) -> Decision:
    """Try the rules in order: the first that holds decides; one that is unknown stops.

    Fail-safe: an `approve` comes only from a rule that holds when every rule before it
    was definitely false. A rule whose condition is unknown (a fact missing or of the
    wrong type) ends evaluation with `review`, or its own `on_unknown` (`deny`, or `skip`
    to go on, after which nothing can approve).
    """
    values = facts.values
    rules = ruleset.rules
    stop: Rule | None = None
    skipped: list[Rule] = []
    result: bool | None = False
    index = -1
    for index, match in enumerate(ruleset.matchers):
        result = match(values)
        if result is not False:
            if result is None and rules[index].on_unknown == "skip":
                skipped.append(rules[index])
                continue
            stop = rules[index]
            break
    tried = index + 1
    get = facts.get
    notes = facts.notes
    wait = None
    message = ""
    approvals: tuple[Step, ...] = ()
    deadline = grant = None
    if stop is None:
        outcome, rule_id = ruleset.default, None
        reason = f"No rule matched; default is {ruleset.default}."
    elif result is None:
        outcome, rule_id = stop.on_unknown or "review", stop.id
        reason = f"Rule {stop.id} could not be evaluated: {_unknowns(stop, get, notes)}."
    else:
        outcome, rule_id, wait = stop.outcome, stop.id, stop.wait
        reason = _render(stop, get) if stop.reason_parts else f"Matched rule {stop.id}."
        message = stop.message or ""
        approvals, deadline, grant = stop.approvals, stop.deadline, stop.grant
    if skipped and (outcome == "approve" or (wait and wait.on_timeout == "approve")):
        # A wait approves when it times out: after a skip it ends in review instead.
        if outcome == "approve":
            outcome, wait, when, message, grant = "review", None, "", "", None
        else:
            wait, when = replace(wait, on_timeout="review"), " when the wait ends"
        reason = (f"{reason} Not approved{when}: rule {skipped[0].id} before it could not be "
                  f"evaluated ({_unknowns(skipped[0], get, notes)}).")
    tried_rules = rules[:tried]
    notes = dict(notes)  # the trace re-reads only facts already resolved: these notes
    return Decision(
        outcome=outcome,
        rule_id=rule_id,
        reason=reason,
        wait=wait,
        revision=ruleset.revision,
        message=message,
        approvals=approvals,
        deadline=deadline,
        grant=grant,
        trace_fn=lambda: _trace(tried_rules, get, notes),
        facts_fn=facts.readable,
        notes=notes,
    )


def _unknowns(rule: Rule, get: Callable[[str], Any], notes: dict[str, str]) -> str:
    """`fact is unknown (why)` for each condition of `rule` that is unknown."""
    _result, conditions = trace_rule(rule.condition, get, notes)
    found: dict[str, str] = {}
    stack = list(conditions)
    while stack:
        entry = stack.pop(0)
        if "fact" in entry:
            if entry["result"] == "unknown":
                found.setdefault(entry["fact"], entry.get("note") or "unknown")
            continue
        stack[:0] = entry.get("all") or entry.get("any") or [entry["not"]]
    return "; ".join(f"{name} is unknown ({why})" for name, why in found.items())


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
        entry = {"rule": rule.id, "matched": result, "conditions": conditions}
        if result is None:
            entry["on_unknown"] = rule.on_unknown or "review"
        trace.append(entry)
    return trace
