"""Replay recorded decisions against candidate rules: what would change."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from approver.rules import Facts, RuleSet, evaluate
from approver.store import Store


@dataclass
class Backtest:
    """Outcome transitions (old -> new) over the recorded decisions, and the first changes."""

    total: int = 0
    transitions: Counter = field(default_factory=Counter)
    changed: list[dict] = field(default_factory=list)

    def render(self, limit: int) -> str:
        lines = [f"{self.total} recorded decisions replayed; "
                 f"{sum(n for (a, b), n in self.transitions.items() if a != b)} would change"]
        for (old, new), count in sorted(self.transitions.items()):
            lines.append(f"  {old:>8} -> {new:<8} {count}")
        if self.changed:
            lines.append(f"\nfirst {min(limit, len(self.changed))} changed:")
        for c in self.changed[:limit]:
            lines.append(f"  {c['request_id']}: {c['old']} ({c['old_rule'] or 'default'}) -> "
                         f"{c['new']} ({c['new_rule'] or 'default'})")
        return "\n".join(lines)


def run(store: Store, ruleset: RuleSet, limit: int = 10_000, keep: int = 20) -> Backtest:
    """Re-evaluate the latest decision of each request with the facts it was made on."""
    result = Backtest()
    seen = set()
    for entry in store.entries(limit):
        request_id = entry.get("request_id")
        if entry.get("event") != "decided" or request_id in seen or not entry.get("facts"):
            continue
        seen.add(request_id)
        new = evaluate(ruleset, Facts.from_values(entry["facts"]))
        old = entry["outcome"]
        result.total += 1
        result.transitions[(old, new.outcome)] += 1
        if (old, entry.get("rule") or None) != (new.outcome, new.rule_id) and len(
                result.changed) < keep:
            result.changed.append({"request_id": request_id, "old": old,
                                   "old_rule": entry.get("rule"), "new": new.outcome,
                                   "new_rule": new.rule_id})
    return result
