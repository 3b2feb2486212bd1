"""The service's Redis state as one object: each part lives in its own module of this
package (request records, the decision log, locks, retention, key ids, waits, claims,
health), and `Store` composes them, so that a caller holds one handle."""

from __future__ import annotations

from collections.abc import Callable

import redis

from approver.state.claims import Claims
from approver.state.health import Health
from approver.state.keyids import KeyIds
from approver.state.locks import Locks
from approver.state.log import DecisionLog
from approver.state.records import Records
from approver.state.retention import Retention, Trimming
from approver.state.waits import Waits


class Store(Records, DecisionLog, Locks, KeyIds, Waits, Claims, Health, Trimming):
    """The service's state in Redis."""

    def __init__(self, connection: redis.Redis, retention: Retention | None = None):
        self.redis = connection
        self.retention = retention or Retention()
        Locks.__init__(self, connection)
        # The log head this process last wrote or saw: the first guess when appending.
        self._head: str | None = None

    def save_and_log(self, request_id: str, fields: dict, event: str, entry: dict,
                     also: Callable[[redis.client.Pipeline], None] | None = None,
                     before: dict | None = None) -> str:
        """`save_state(request_id, **fields)`, then `log(event, request_id, **entry)`, in
        one MULTI/EXEC round trip (two if another writer moved the log head meanwhile);
        `also(pipe)` may queue more commands between the two; `before`: the record as
        stored now, if known exactly (`_queue_state`). Returns the entry's id."""
        body = self._entry_body(event, request_id, entry)
        pipe = self.redis.pipeline(transaction=True)
        self._queue_state(pipe, request_id, fields, before)
        if also is not None:
            also(pipe)
        return self._append(body, pipe)
