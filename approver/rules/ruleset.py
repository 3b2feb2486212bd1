"""Loaded rules: `Rule`, `WaitSpec` and the ordered `RuleSet`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from approver.rules.conditions import Evaluator, Node

OUTCOMES = ("approve", "deny", "review", "wait")
# What the developer is told when the deciding rule has no `message` (or did not decide
# by matching): never the rule's id, a fact or its internal `reason`.
DEFAULT_MESSAGES = {
    "approve": "Your request meets the conditions for access.",
    "deny": "Your request does not meet the conditions for access to this API.",
    "review": "A person checks requests like this one before a key is issued.",
    "wait": "Your request is decided as soon as your subscription is active.",
}


def developer_message(outcome: str | None, message: str | None = None) -> str:
    """What the developer is told of a decision: its message, else the plain default."""
    return (message or "").strip() or DEFAULT_MESSAGES.get(outcome or "", "")
ON_UNKNOWN = ("review", "deny", "skip")

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")


@dataclass(frozen=True)
class WaitSpec:
    """What a `wait` outcome waits for, for how long, and what happens then."""

    for_: str
    timeout_seconds: int
    on_timeout: str

    def to_dict(self) -> dict:
        """JSON-friendly form, with the YAML key `for`."""
        return {
            "for": self.for_,
            "timeout_seconds": self.timeout_seconds,
            "on_timeout": self.on_timeout,
        }


def parse_template(text: str) -> tuple[tuple[str, str], ...]:
    """Split a reason into ("text", s) and ("fact", name) parts; `{{`/`}}` are literal braces."""
    parts: list[tuple[str, str]] = []
    pos = 0
    for match in _PLACEHOLDER.finditer(text):
        parts.append(("text", text[pos : match.start()]))
        token = match.group(0)
        if token in ("{{", "}}"):
            parts.append(("text", token[0]))
        else:
            parts.append(("fact", match.group(1).strip()))
        pos = match.end()
    parts.append(("text", text[pos:]))
    return tuple(p for p in parts if p != ("text", ""))


@dataclass(frozen=True)
class Rule:
    """One rule as loaded: where it came from, its condition and its outcome."""

    id: str
    outcome: str
    file: str
    line: int
    condition: Node | None = None
    reason: str | None = None
    # For the developer (mail, hand-off page); `reason` is for admins, the log, the trace.
    message: str | None = None
    wait: WaitSpec | None = None
    description: str = ""
    # What an unknown condition leads to: an outcome (never approve), or "skip"; None: review.
    on_unknown: str | None = None
    match: Evaluator = field(default=lambda values: True, repr=False, compare=False)
    reason_parts: tuple[tuple[str, str], ...] = field(default=(), repr=False, compare=False)


@dataclass(frozen=True)
class RuleSet:
    """Rules in evaluation order across files, the default outcome and the revision."""

    rules: tuple[Rule, ...]
    default: str = "review"
    revision: str = ""
    files: tuple[str, ...] = ()
    facts_used: frozenset[str] = frozenset()
    matchers: tuple[Evaluator, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        # The evaluation loop walks plain closures, not Rule attributes.
        object.__setattr__(self, "matchers", tuple(rule.match for rule in self.rules))

    def rule(self, rule_id: str) -> Rule | None:
        """The rule with this id, if any."""
        return next((r for r in self.rules if r.id == rule_id), None)
