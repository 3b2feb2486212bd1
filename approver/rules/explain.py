"""A decision's trace as text an admin reads at a terminal."""

from __future__ import annotations

import json

from approver.rules.engine import Decision

_MARK = {True: "✓", False: "✗", None: "?", "unknown": "?"}


def _value(value) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _conditions(items: list, depth: int) -> list[str]:
    lines = []
    pad = "    " * depth
    for item in items:
        for group in ("all", "any"):
            if group in item:
                lines.append(f"{pad}{_MARK.get(item.get('result'), '?')} {group} of:")
                lines += _conditions(item[group], depth + 1)
                break
        else:
            if "not" in item:
                lines.append(f"{pad}{_MARK.get(item.get('result'), '?')} not:")
                lines += _conditions([item["not"]], depth + 1)
                continue
            note = (f"  ({item['note']})" if item.get("note") else
                    f"  (from {item['source']})" if item.get("source") else "")
            converted = (f" as {item['as']} {_value(item.get('converted'))}"
                         if "as" in item else "")
            lines.append(
                f"{pad}{_MARK.get(item.get('result'), '?')} {item['fact']} = "
                f"{_value(item.get('actual'))}{converted}  {item['op']} "
                f"{_value(item.get('expected'))}{note}"
            )
    return lines


def render(decision: Decision) -> str:
    """The outcome, the rule and the reason, then each rule tried with its conditions."""
    lines = [
        f"outcome:  {decision.outcome}",
        f"rule:     {decision.rule_id or '(default)'}",
        f"reason:   {decision.reason}",
        f"revision: {decision.revision}",
    ]
    if decision.wait:
        w = decision.wait
        lines.append(f"wait:     for {w.for_}, {w.timeout_seconds}s, then {w.on_timeout}")
    lines.append("")
    return "\n".join(lines + trace_lines(decision))


def trace_lines(decision: Decision) -> list[str]:
    """Each rule tried, ✓ matched / ✗ not / ? unknown, with its conditions; then the notes."""
    lines = []
    for entry in decision.trace:
        verdict = {True: "matched", False: "no match", None: "unknown"}[entry["matched"]]
        if entry["matched"] is None:
            verdict += f" -> {entry.get('on_unknown', 'review')}"
        lines.append(f"{_MARK[entry['matched']]} rule {entry['rule']}: {verdict}")
        lines += _conditions(entry.get("conditions", []), 1)
    if decision.notes:
        lines.append("")
        lines += [f"note: {name}: {why}" for name, why in sorted(decision.notes.items())]
    return lines
