"""Retention: how much of the decision log and of finished requests' records Redis keeps."""

from __future__ import annotations

import time
from dataclasses import dataclass

from approver.config import Settings
from approver.state.common import PREFIX
from approver.state.log import LOG_KEY
from approver.state.records import RECORDS_KEY
from approver.state.renewals import OPEN_KEY


@dataclass(frozen=True)
class Retention:
    """How much Redis keeps: the decision log and finished requests' records, each by
    count and by age (seconds; None keeps any age)."""

    log_max_entries: int = Settings.log_max_entries
    log_max_age: int | None = Settings.log_max_age
    record_max_entries: int = Settings.record_max_entries
    record_max_age: int | None = Settings.record_max_age

    @classmethod
    def of(cls, settings: Settings) -> Retention:
        """The retention the settings ask for."""
        return cls(settings.log_max_entries, settings.log_max_age,
                   settings.record_max_entries, settings.record_max_age)


# Drop the records listed (and their steps and renewals) whose finishing time is still at
# most ARGV[1] (one a request decided again meanwhile is left alone). KEYS: the records index;
# ARGV: limit, ids...
_DROP = f"""
local dropped = 0
for i = 2, #ARGV do
  local score = redis.call('zscore', KEYS[1], ARGV[i])
  if score and tonumber(score) <= tonumber(ARGV[1]) then
    redis.call('del', '{PREFIX}request:' .. ARGV[i])
    redis.call('del', '{PREFIX}steps:' .. ARGV[i])  -- its steps (state/steps.py) go with it
    redis.call('del', '{PREFIX}renewal:' .. ARGV[i])  -- and its renewal (state/renewals.py)
    redis.call('zrem', '{OPEN_KEY}', ARGV[i])
    redis.call('zrem', KEYS[1], ARGV[i])
    dropped = dropped + 1
  end
end
return dropped
"""


class Trimming:
    """Applying the retention (mixed into `Store`: `self.redis`, `self.retention`)."""

    def trim(self, now: float | None = None, batch: int = 1000) -> dict:
        """Apply the retention settings once: what was dropped.

        The log is capped by count as each entry is added; its age limit and both limits
        on finished requests' records are applied here (at most `batch` records a call).
        """
        now = time.time() if now is None else now
        r, done = self.retention, {"log_entries": 0, "records": 0}
        if r.log_max_age:
            done["log_entries"] = self.redis.xtrim(
                LOG_KEY, minid=f"{int((now - r.log_max_age) * 1000)}-0", approximate=True)
        limits = []
        if r.record_max_age:
            limits.append(now - r.record_max_age)
        excess = self.redis.zcard(RECORDS_KEY) - r.record_max_entries
        if excess > 0:
            oldest = self.redis.zrange(RECORDS_KEY, min(excess, batch) - 1,
                                       min(excess, batch) - 1, withscores=True)
            limits.extend(score for _, score in oldest)
        if limits:
            limit = max(limits)
            ids = self.redis.zrangebyscore(RECORDS_KEY, "-inf", limit, start=0, num=batch)
            if ids:
                done["records"] = self.redis.eval(_DROP, 1, RECORDS_KEY, repr(limit), *ids)
        return done
