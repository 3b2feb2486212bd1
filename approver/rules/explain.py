"""A decision's trace as a tree of steps, the one account of it every output shows: the
command line (`rules explain`, `rules test`) as indented text, the console as nested lists.

Each step is a condition (or a rule, or a group of conditions) with its mark, ✓ true,
✗ false or ? unknown, the value it tested (and the `as:` conversion), and the cause of an
unknown. Text from the request (sign-up fields, emails) is written with its control,
bidi and invisible characters escaped, so it reads the same wherever it is shown.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from approver.rules.engine import Decision
from approver.terminal import printable

MARKS = {True: "✓", False: "✗", None: "?", "unknown": "?"}
STATES = {True: "true", False: "false", None: "unknown", "unknown": "unknown"}
PAD = "    "


@dataclass(frozen=True)
class Step:
    """One line of the tree: its mark, its text, its state (true, false, unknown) and the
    steps under it."""

    mark: str
    text: str
    state: str
    children: tuple[Step, ...] = ()


def _value(value) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _step(result, text: str, children: tuple[Step, ...] = ()) -> Step:
    return Step(MARKS.get(result, "?"), printable(text), STATES.get(result, "unknown"),
                children)


def _condition(item: dict) -> Step:
    result = item.get("result")
    for group in ("all", "any"):
        if group in item:
            return _step(result, f"{group} of:", tuple(map(_condition, item[group])))
    if "not" in item:
        return _step(result, "not:", (_condition(item["not"]),))
    unknown = item.get("actual") is None and result in (None, "unknown")
    actual = "unknown" if unknown else _value(item.get("actual"))
    converted = ""
    if "as" in item:
        converted = f" as {item['as']} " + (
            "unknown" if item.get("converted") is None else _value(item["converted"]))
    note = (f"  ({item['note']})" if item.get("note") else
            f"  (from {item['source']})" if item.get("source") else "")
    return _step(result, f"{item['fact']} = {actual}{converted}  {item['op']} "
                         f"{_value(item.get('expected'))}{note}")


def steps(trace: list[dict]) -> list[Step]:
    """Each rule tried, in order, with its conditions under it."""
    found = []
    for entry in trace or []:
        matched = entry.get("matched")
        verdict = {True: "matched", False: "no match"}.get(matched, "unknown")
        if matched not in (True, False):
            verdict += f" -> {entry.get('on_unknown', 'review')}"
        found.append(_step(matched, f"rule {entry.get('rule')}: {verdict}",
                           tuple(map(_condition, entry.get("conditions") or []))))
    return found


def lines(tree: list[Step], depth: int = 0) -> list[str]:
    """The tree as indented lines of text."""
    out = []
    for step in tree:
        out.append(f"{PAD * depth}{step.mark} {step.text}")
        out += lines(list(step.children), depth + 1)
    return out


def used(trace: list[dict]) -> list[tuple[str, Step]]:
    """Each fact the rules read, once, in the order read: its value, or unknown with the
    cause (as the trace says it)."""
    seen: dict[str, Step] = {}
    stack = [c for entry in trace or [] for c in entry.get("conditions") or []]
    while stack:
        item = stack.pop(0)
        if "fact" not in item:
            stack[:0] = item.get("all") or item.get("any") or [item["not"]]
            continue
        if item["fact"] in seen:
            continue
        if item.get("actual") is None:
            text = "unknown" + (f" ({item['note']})" if item.get("note") else "")
            seen[item["fact"]] = Step("?", printable(text), "unknown")
        else:
            seen[item["fact"]] = Step("", printable(_value(item["actual"])), "known")
    return [(printable(name), step) for name, step in seen.items()]


def render(decision: Decision) -> str:
    """The outcome, the rule and the reason, then each rule tried with its conditions."""
    head = [
        f"outcome:  {decision.outcome}",
        f"rule:     {decision.rule_id or '(default)'}",
        f"reason:   {decision.reason}",
        f"revision: {decision.revision}",
    ]
    if decision.wait:
        w = decision.wait
        head.append(f"wait:     for {w.for_}, {w.timeout_seconds}s, then {w.on_timeout}")
    head += approval_lines(decision.approvals, decision.deadline)
    head.append("")
    return "\n".join(head + trace_lines(decision))


def approval_lines(approvals, deadline) -> list[str]:
    """A review's steps, in order, and its deadline, one line each (none if it has none)."""
    out = [f"step {n}:   {step.describe()}" for n, step in enumerate(approvals, 1)]
    if deadline:
        parts = [f"{label} {seconds_text(getattr(deadline, key))}" for key, label in (
            ("remind_after", "remind after"), ("escalate_after", "escalate after"),
            ("expire_after", "expire after")) if getattr(deadline, key)]
        if deadline.escalate_to:
            parts.insert(-1 if deadline.expire_after else len(parts),
                         f"escalate to {deadline.escalate_to}")
        if deadline.expire_after:
            parts.append(f"then {deadline.on_expire}")
        out.append("deadline: " + ", ".join(parts))
    return out


def seconds_text(seconds: int) -> str:
    """A duration as written in rules: 14d, 4h, 30m, 90s."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def trace_lines(decision: Decision) -> list[str]:
    """Each rule tried, ✓ matched / ✗ not / ? unknown, with its conditions; then the notes."""
    out = lines(steps(decision.trace))
    if decision.notes:
        out.append("")
        out += [printable(f"note: {name}: {why}") for name, why in sorted(decision.notes.items())]
    return out
