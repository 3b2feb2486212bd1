"""Loaded rules: `Rule`, `WaitSpec` and the ordered `RuleSet`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from approver.rules.conditions import Evaluator, Node
from approver.rules.grants import Grant

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


@dataclass(frozen=True)
class Step:
    """One step of a `review` rule's approvals: `count` different members of `group`, or
    the validator named `validator`, or the outside approver at the address `email`."""

    group: str | None = None
    count: int = 1
    validator: str | None = None
    email: str | None = None

    def to_dict(self) -> dict:
        """JSON-friendly form, as recorded (the YAML keys)."""
        if self.validator:
            return {"validator": self.validator}
        if self.email:
            return {"email": self.email}
        return {"group": self.group, "count": self.count}

    def describe(self) -> str:
        """The step as a person reads it: `2 of payments-owners`, `validator crm`,
        `email legal@partner.example`."""
        if self.validator or self.email:
            return f"validator {self.validator}" if self.validator else f"email {self.email}"
        return f"{self.count} of {self.group}"


@dataclass(frozen=True)
class Deadline:
    """When a request left to people is reminded, escalated and expired (seconds; 0: never)."""

    remind_after: int = 0
    escalate_after: int = 0
    escalate_to: str | None = None
    expire_after: int = 0
    on_expire: str = "deny"

    def to_dict(self) -> dict:
        """JSON-friendly form, as recorded (seconds)."""
        return {"remind_after": self.remind_after, "escalate_after": self.escalate_after,
                "escalate_to": self.escalate_to, "expire_after": self.expire_after,
                "on_expire": self.on_expire}


def steps_from(data) -> tuple[Step, ...]:
    """Steps back from their recorded form."""
    return tuple(Step(d.get("group"), int(d.get("count") or 1), d.get("validator"),
                      d.get("email"))
                 for d in data or () if isinstance(d, dict))


def deadline_from(data) -> Deadline | None:
    """A deadline back from its recorded form."""
    if not isinstance(data, dict):
        return None
    return Deadline(int(data.get("remind_after") or 0), int(data.get("escalate_after") or 0),
                    data.get("escalate_to"), int(data.get("expire_after") or 0),
                    data.get("on_expire") if data.get("on_expire") in ON_EXPIRE else "deny")


ON_EXPIRE = ("deny", "review")


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
    # A review rule's steps of people and validators, and its deadline.
    approvals: tuple[Step, ...] = ()
    deadline: Deadline | None = None
    # An approve rule's period of access (rules/grants.py).
    grant: Grant | None = None
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
