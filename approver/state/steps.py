"""Where a request with steps stands: which step it is at, who approved which, overrides,
and whether its deadline escalated. One Redis hash per request, moved forward atomically
with the request's claim: of two people approving the last step at once, one approval
completes it (and takes the claim that applies it), the other is told.

Bound to the decision that set the steps (its `approvals_id`): a request decided again
starts afresh.
"""

from __future__ import annotations

import json

from approver.state.claims import CLAIM_TTL, claim_key
from approver.state.common import PREFIX
from approver.state.records import IN_REVIEW, state_key
from approver.state.store import Store

# Results of `approve`: the step counted this person; the step passed; the last step passed
# and the claim that applies the approval is taken; refusals.
COUNTED, PASSED, COMPLETE = "counted", "passed", "complete"
NOT_IN_REVIEW, CLAIMED, MOVED, ALREADY = "not_in_review", "claimed", "moved", "already"

# KEYS: the request's state, its steps, its claim. ARGV: the approvals id, step index decided,
# person, how many the step needs, how many steps, override ("1"/""), the claim (JSON), TTL.
_APPROVE = f"""
local state = redis.call('hget', KEYS[1], 'state')
if state ~= '{IN_REVIEW}' then return {{'{NOT_IN_REVIEW}', state or ''}} end
local claim = redis.call('get', KEYS[3])
if claim then return {{'{CLAIMED}', claim}} end
if redis.call('hget', KEYS[2], 'decision') ~= ARGV[1] then
  redis.call('del', KEYS[2])
  redis.call('hset', KEYS[2], 'decision', ARGV[1], 'current', '0', 'people', '[]')
end
local current = tonumber(redis.call('hget', KEYS[2], 'current'))
if current ~= tonumber(ARGV[2]) then return {{'{MOVED}', tostring(current)}} end
local people = cjson.decode(redis.call('hget', KEYS[2], 'people'))
for _, who in ipairs(people) do
  if who == ARGV[3] and ARGV[6] ~= '1' then return {{'{ALREADY}', ''}} end
end
table.insert(people, ARGV[3])
redis.call('hset', KEYS[2], 'people', cjson.encode(people))
local field = 'step:' .. current
local approvers = cjson.decode(redis.call('hget', KEYS[2], field) or '[]')
table.insert(approvers, ARGV[3])
redis.call('hset', KEYS[2], field, cjson.encode(approvers))
if ARGV[6] == '1' then redis.call('hset', KEYS[2], 'override:' .. current, ARGV[3]) end
if #approvers < tonumber(ARGV[4]) and ARGV[6] ~= '1' then
  return {{'{COUNTED}', tostring(#approvers)}}
end
current = current + 1
redis.call('hset', KEYS[2], 'current', tostring(current))
if current < tonumber(ARGV[5]) then return {{'{PASSED}', tostring(current)}} end
redis.call('set', KEYS[3], ARGV[7], 'EX', ARGV[8])
return {{'{COMPLETE}', tostring(current)}}
"""


def steps_key(request_id: str) -> str:
    """The hash holding where a request with steps stands."""
    return f"{PREFIX}steps:{request_id}"


def progress(store: Store, request_id: str, approvals_id: str) -> dict:
    """Where the request stands for the decision that set its steps: the current step's
    index, who approved each step, who overrode which, whether it escalated."""
    raw = {k.decode(): v.decode() for k, v in
           store.redis.hgetall(steps_key(request_id)).items()}
    if raw.get("decision") != approvals_id:
        raw = {}
    approved, overridden = {}, {}
    for field, value in raw.items():
        kind, _, index = field.partition(":")
        if kind == "step":
            approved[int(index)] = json.loads(value)
        elif kind == "override":
            overridden[int(index)] = value
    return {"current": int(raw.get("current") or 0), "approved": approved,
            "overridden": overridden, "people": json.loads(raw.get("people") or "[]"),
            "escalated": raw.get("escalated") == "1",
            "reminded": raw.get("reminded") == "1", "expired": raw.get("expired") == "1"}


def approve(store: Store, request_id: str, approvals_id: str, step: int, person: str,
            needed: int, steps: int, override: bool, claim: dict) -> tuple[str, str]:
    """Count `person`'s approval of step `step` (of `steps`; `needed` people), atomically:
    (COUNTED, how many now), (PASSED, the next step), (COMPLETE, "") with `claim` taken;
    or a refusal: (NOT_IN_REVIEW, state), (CLAIMED, the claim), (MOVED, the current step),
    (ALREADY, "") when this person approved a step of this request before."""
    result, detail = store.redis.eval(
        _APPROVE, 3, state_key(request_id), steps_key(request_id), claim_key(request_id),
        approvals_id, step, person, needed, steps, "1" if override else "",
        json.dumps(claim), CLAIM_TTL)
    return _text(result), _text(detail)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def mark(store: Store, request_id: str, approvals_id: str, flag: str) -> bool:
    """Set a one-time flag (`escalated`, `reminded`) for this decision's steps; True only
    for the caller that set it (so each is acted on once)."""
    key = steps_key(request_id)
    script = """
if redis.call('hget', KEYS[1], 'decision') ~= ARGV[1] then
  redis.call('del', KEYS[1])
  redis.call('hset', KEYS[1], 'decision', ARGV[1], 'current', '0', 'people', '[]')
end
return redis.call('hsetnx', KEYS[1], ARGV[2], '1')
"""
    return bool(store.redis.eval(script, 1, key, approvals_id, flag))
