"""An approve rule's `grant:`: access for a period, checked as it loads.

`expires_after` is how long the access lasts, `remind_before` when the developer is told
before it ends, `renew` how it may be renewed (`review`: a person decides again; `rules`:
the rules decide again). Renewal never approves by itself: without a new decision the
access ends. The schema has already refused unknown keys and wrong types.
"""

from __future__ import annotations

from dataclasses import dataclass

from approver.rules.errors import Problem
from approver.rules.values import parse_duration
from approver.rules.yamlsource import Located

RENEW = ("review", "rules")
LONGEST = 5 * 366 * 86400  # a grant longer than five years is a typo, not a period


@dataclass(frozen=True)
class Grant:
    """How long an approval lasts (seconds), when the developer is reminded before its
    end (seconds; 0: not reminded), and how it may be renewed."""

    expires_after: int
    remind_before: int = 0
    renew: str = "review"

    def to_dict(self) -> dict:
        """JSON-friendly form, as recorded (seconds)."""
        return {"expires_after": self.expires_after, "remind_before": self.remind_before,
                "renew": self.renew}


def grant_from(data) -> Grant | None:
    """A grant back from its recorded form (None if there is none or it is unusable)."""
    if not isinstance(data, dict):
        return None
    try:
        expires, remind = int(data.get("expires_after") or 0), int(data.get("remind_before") or 0)
    except (TypeError, ValueError):
        return None
    if expires <= 0:
        return None
    return Grant(expires, max(0, remind),
                 data.get("renew") if data.get("renew") in RENEW else "review")


def parse(item: dict, path: tuple, name: str, located: Located,
          problems: list[Problem]) -> Grant | None:
    """The rule's grant; problems appended (then the rule is not used)."""
    spec = item.get("grant")
    if spec is None:
        return None
    where = (*path, "grant")
    if item.get("then") != "approve":
        problems.append(Problem(name, located.line(where),
                                "grant: is only allowed with then: approve"))
        return None
    if not isinstance(spec, dict):
        return None  # the schema has reported it
    before = len(problems)
    seconds = {}
    for key in ("expires_after", "remind_before"):
        if not isinstance(spec.get(key), str | int) or isinstance(spec[key], bool):
            continue  # absent, or of a type the schema has reported
        value = parse_duration(spec[key])
        if not value or value > LONGEST:
            problems.append(Problem(name, located.line((*where, key)),
                                    f"bad duration {spec[key]!r}; use e.g. 7d, 90d "
                                    f"(at most {LONGEST // 86400}d)"))
        seconds[key] = value or 0
    expires, remind = seconds.get("expires_after", 0), seconds.get("remind_before", 0)
    if expires and remind and remind >= expires:
        problems.append(Problem(name, located.line((*where, "remind_before")),
                                "remind_before is not shorter than expires_after: the "
                                "reminder would come before the access is granted"))
    if len(problems) > before or not expires:  # no expires_after: the schema said so
        return None
    return Grant(expires, remind, spec.get("renew", "review"))
