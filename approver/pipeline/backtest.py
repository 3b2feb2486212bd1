"""Replay recorded decisions against candidate rules: what would change."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from approver.rules import Facts, RuleSet, default_registry, evaluate
from approver.rules.resolver import NOT_GIVEN
from approver.rules.ruleset import steps_from
from approver.state import Store


@dataclass
class Backtest:
    """Outcome transitions (old -> new) over the comparable decisions, and every difference.

    `changed`: the outcome changes; `moved`: same outcome, another rule; `not_comparable`:
    decisions the candidate rules cannot be replayed on (made outside the rules, or recorded
    without a fact the candidate reads). The counts in `render` are the lengths of these.
    """

    total: int = 0
    transitions: Counter = field(default_factory=Counter)
    changed: list[dict] = field(default_factory=list)
    moved: list[dict] = field(default_factory=list)
    # Same outcome by the same rule, but other steps of people before an approval.
    steps: list[dict] = field(default_factory=list)
    not_comparable: list[dict] = field(default_factory=list)
    # People's decisions (the console, the command line, Tyk itself), replayed on the facts
    # the rules recorded before they left the request to a person.
    people: Counter = field(default_factory=Counter)  # (person's outcome, candidate's) -> n
    disagreements: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-friendly form (`rules backtest --json`)."""
        return {"total": self.total, "changed": self.changed, "moved": self.moved,
                "steps": self.steps,
                "not_comparable": self.not_comparable,
                "transitions": [{"old": o, "new": n, "count": c}
                                for (o, n), c in sorted(self.transitions.items())],
                "people": [{"person": p, "candidate": c, "count": n}
                           for (p, c), n in sorted(self.people.items())],
                "disagreements": self.disagreements}

    def against_people(self) -> list[str]:
        """What people decided and what the candidate rules would have, in sentences."""
        if not self.people:
            return []
        approved = sum(n for (p, _), n in self.people.items() if p == "approve")
        denied = sum(n for (p, _), n in self.people.items() if p == "deny")
        kept = self.people[("approve", "approve")]
        bad = self.people[("deny", "approve")]
        return [f"\npeople decided {approved + denied} requests: the candidate rules would "
                f"have approved {kept} of the {approved} requests people approved, and "
                f"approved {bad} they denied" + (":" if self.disagreements else ".")]

    def render(self, limit: int) -> str:
        """The summary, the outcome transitions, then up to `limit` requests of each list."""
        lines = [
            f"{self.total + len(self.not_comparable)} recorded decisions: {self.total} "
            f"replayed, {len(self.changed)} would change outcome, {len(self.moved)} would keep "
            f"it by another rule, "
            + (f"{len(self.steps)} would need other steps, " if self.steps else "")
            + f"{len(self.not_comparable)} not comparable"
        ]
        for (old, new), count in sorted(self.transitions.items()):
            lines.append(f"  {old:>8} -> {new:<8} {count}")
        for title, items in (("outcome changes", self.changed),
                             ("same outcome, another rule", self.moved)):
            lines += _section(title, items, limit, lambda c: (
                f"{c['request_id']}: {c['old']} ({c['old_rule'] or 'default'}) -> "
                f"{c['new']} ({c['new_rule'] or 'default'})" + _needs(c["new_steps"])))
        lines += _section("other steps", self.steps, limit, lambda c: (
            f"{c['request_id']}: {c['new_rule']}" + _needs(c["old_steps"], "needed")
            + "; now" + _needs(c["new_steps"])))
        lines += self.against_people()
        lines += [f"  {line}" for line in map(_disagreement, self.disagreements[:limit])]
        if len(self.disagreements) > limit:
            lines.append(f"  ... and {len(self.disagreements) - limit} more (--show)")
        lines += _section("not comparable", self.not_comparable, limit,
                          lambda c: f"{c['request_id']}: {c['why']}")
        return "\n".join(lines)


def _needs(steps: list[dict], verb: str = "needs") -> str:
    """`, needs validator crm, 2 of owners` for a list of recorded steps ("" if none)."""
    if not steps:
        return "" if verb == "needs" else f" {verb} no steps"
    return f", {verb} " + ", ".join(s.describe() for s in steps_from(steps))


def _disagreement(d: dict) -> str:
    return (f"{d['request_id']} {d['developer_email'] or '?'}: {d['person_outcome']} by "
            f"{d['decided_by']}, the candidate rules {d['candidate']} "
            f"({d['candidate_rule'] or 'default'}: {d['cause']})")


def _section(title: str, items: list[dict], limit: int, line) -> list[str]:
    if not items:
        return []
    lines = [f"\n{title} ({len(items)}):"] + [f"  {line(c)}" for c in items[:limit]]
    if len(items) > limit:
        lines.append(f"  ... and {len(items) - limit} more (--show)")
    return lines


def run(store: Store, ruleset: RuleSet, limit: int = 10_000) -> Backtest:
    """Re-evaluate the latest decision of each request on the facts it was made with."""
    result = Backtest()
    registry = default_registry()
    seen = set()
    decided = [e for e in store.entries(limit) if e.get("event") == "decided"]
    for entry in decided:
        request_id = entry.get("request_id")
        if request_id in seen:
            continue
        seen.add(request_id)
        recorded = entry.get("facts")
        if entry.get("decided_by") and entry.get("outcome") in ("approve", "deny") and \
                _against_person(result, entry, decided, ruleset, registry):
            continue
        if not recorded or entry.get("decided_by"):
            why = f"decided by {entry['decided_by']}" if entry.get("decided_by") else \
                "recorded without facts"
            result.not_comparable.append({"request_id": request_id, "why": why})
            continue
        facts = Facts.from_values(recorded, registry)
        new = evaluate(ruleset, facts)
        missing = _unrecorded(facts, recorded)
        if missing:
            result.not_comparable.append({
                "request_id": request_id,
                "why": f"recorded without {', '.join(missing)}, which the candidate rules read",
            })
            continue
        old, old_rule = entry["outcome"], entry.get("rule") or None
        result.total += 1
        result.transitions[(old, new.outcome)] += 1
        old_steps = list(entry.get("approvals") or [])
        new_steps = [step.to_dict() for step in new.approvals]
        change = {"request_id": request_id, "old": old, "old_rule": old_rule,
                  "new": new.outcome, "new_rule": new.rule_id, "old_steps": old_steps,
                  "new_steps": new_steps}
        if old != new.outcome:
            result.changed.append(change)
        elif old_rule != new.rule_id:
            result.moved.append(change)
        elif old_steps != new_steps:
            result.steps.append(change)
    return result


def _unrecorded(facts: Facts, recorded: dict) -> list[str]:
    """Facts the evaluation read that the record does not hold.

    A field missing from a recorded family (`"request.fields": {...}`) was not on the
    request: unknown then as now, so comparable. Decisions recorded before every fact was
    kept have no such families, and lack what their rules did not read.
    """
    families = tuple(f"{name}." for name, value in recorded.items() if isinstance(value, dict))
    return sorted(
        name for name, note in facts.notes.items()
        if note == NOT_GIVEN and not name.startswith(families)
    )


def _against_person(result: Backtest, entry: dict, decided: list[dict], ruleset: RuleSet,
                    registry) -> bool:
    """Replay a person's decision on the facts the rules recorded before it (the same
    request's latest decision with facts); False if there are none."""
    request_id = entry["request_id"]
    earlier = next((e for e in decided if e.get("request_id") == request_id
                    and e.get("facts")), None)
    if earlier is None:
        return False
    facts = Facts.from_values(earlier["facts"], registry)
    new = evaluate(ruleset, facts)
    person, candidate = entry["outcome"], new.outcome
    result.people[(person, candidate)] += 1
    if (person == "approve") != (candidate == "approve"):
        result.disagreements.append({
            "request_id": request_id, "developer_email": entry.get("developer_email") or "",
            "decided_by": entry.get("decided_by"), "person_outcome": person,
            "candidate": candidate, "candidate_rule": new.rule_id, "cause": new.reason})
    return True
