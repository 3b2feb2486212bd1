"""A review rule's `approvals:` (ordered steps of people and validators) and `deadline:`,
checked as they load: where they may stand, counts, durations, what goes together.

The schema has already refused unknown keys and wrong types; what it cannot say is here,
each problem at its line. Nothing ever approves on expiry: `on_expire` is deny or review.
"""

from __future__ import annotations

from approver.rules.errors import Problem
from approver.rules.groups import EMAIL
from approver.rules.ruleset import Deadline, Step
from approver.rules.values import parse_duration
from approver.rules.yamlsource import Located

DURATIONS = ("remind_after", "escalate_after", "expire_after")


def parse(item: dict, path: tuple, name: str, located: Located,
          problems: list[Problem]) -> tuple[tuple[Step, ...], Deadline | None]:
    """The rule's steps and deadline; problems appended (then the rule is not used)."""
    steps_spec, deadline_spec = item.get("approvals"), item.get("deadline")
    for key, spec in (("approvals", steps_spec), ("deadline", deadline_spec)):
        if spec is not None and item.get("then") != "review":
            problems.append(Problem(name, located.line((*path, key)),
                                    f"{key}: is only allowed with then: review"))
            return (), None
    return (_steps(steps_spec, (*path, "approvals"), name, located, problems),
            _deadline(deadline_spec, (*path, "deadline"), name, located, problems))


def _steps(spec, path: tuple, name: str, located: Located,
           problems: list[Problem]) -> tuple[Step, ...]:
    if not isinstance(spec, list):
        return ()
    steps: list[Step] = []
    for index, step in enumerate(spec):
        where = located.line((*path, index))
        if not isinstance(step, dict):
            continue  # the schema has reported it
        group, validator, email = step.get("group"), step.get("validator"), step.get("email")
        if [bool(group), bool(validator), bool(email)].count(True) != 1:
            problems.append(Problem(name, where, "a step names a group, a validator or an "
                                    "email address (exactly one of them)"))
        elif (validator or email) and "count" in step:
            problems.append(Problem(name, located.line((*path, index, "count")),
                                    "count: is for a group's step; a validator or an "
                                    "email address answers once"))
        elif email and not (isinstance(email, str) and EMAIL.match(email)):
            problems.append(Problem(name, located.line((*path, index, "email")),
                                    f"{email!r} is not one email address"))
        elif isinstance(step.get("count", 1), int) and not isinstance(step.get("count"), bool):
            steps.append(Step(group, step.get("count", 1), validator, email))
    groups = [s.group for s in steps if s.group]
    for group in {g for g in groups if groups.count(g) > 1}:
        problems.append(Problem(name, located.line(path), f"group {group} has two steps: "
                                "one step with count: N asks for N different people"))
    return tuple(steps)


def _deadline(spec, path: tuple, name: str, located: Located,
              problems: list[Problem]) -> Deadline | None:
    if not isinstance(spec, dict):
        return None
    before = len(problems)
    seconds = {}
    for key in DURATIONS:
        if key in spec:
            value = parse_duration(spec[key])
            if not value or value <= 0:
                problems.append(Problem(name, located.line((*path, key)),
                                        f"bad duration {spec[key]!r}; use e.g. 4h, 1d, 14d"))
            seconds[key] = value or 0
    if bool(spec.get("escalate_to")) != ("escalate_after" in spec):
        problems.append(Problem(name, located.line(path),
                                "escalate_after and escalate_to go together"))
    if "on_expire" in spec and "expire_after" not in spec:
        problems.append(Problem(name, located.line((*path, "on_expire")),
                                "on_expire: needs expire_after:"))
    expire = seconds.get("expire_after") or 0
    for key in ("remind_after", "escalate_after"):
        if expire and seconds.get(key) and seconds[key] >= expire:
            problems.append(Problem(name, located.line((*path, key)),
                                    f"{key} is not before expire_after: it would never happen"))
    if len(problems) > before:
        return None
    return Deadline(seconds.get("remind_after", 0), seconds.get("escalate_after", 0),
                    spec.get("escalate_to"), expire, spec.get("on_expire", "deny"))
