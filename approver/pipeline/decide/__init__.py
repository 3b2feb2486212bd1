"""Deciding one key request and applying the decision, exactly once.

`by_rules.run` is what a job runs: `pending` reads the request as its portal has it now
and gathers its facts, the rules decide, `apply` records the decision (before any Tyk
call: the outbox) and carries it out. `by_people` takes the decisions no rule made: a
person's in the review inbox, one made in Tyk itself, a billing system's. `result` is what
a run comes to, and the errors that end one.
"""

from approver.pipeline.decide.by_people import decide_by_person, decide_explicitly, past
from approver.pipeline.decide.by_rules import run, stale_wait
from approver.pipeline.decide.pending import UNKNOWN_TTL, fetch, gather
from approver.pipeline.decide.result import (
    BY_PERSON,
    IN_TYK,
    NotYetReadable,
    ReplicaBehind,
    Result,
    permanent,
)

__all__ = [
    "BY_PERSON",
    "IN_TYK",
    "UNKNOWN_TTL",
    "NotYetReadable",
    "ReplicaBehind",
    "Result",
    "decide_by_person",
    "decide_explicitly",
    "fetch",
    "gather",
    "past",
    "permanent",
    "run",
    "stale_wait",
]
