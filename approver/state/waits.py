"""Requests that wait for a fact (billing): by deadline, and under their developer."""

from __future__ import annotations

from approver.state.common import PREFIX

WAITS_KEY = PREFIX + "waiting"


class Waits:
    """Waiting requests (mixed into `Store`: `self.redis`)."""

    def park(self, request_id: str, developer_id: str, deadline: float) -> None:
        """Remember a waiting request: by deadline, and under its developer."""
        pipe = self.redis.pipeline(transaction=True)
        self.queue_park(pipe, request_id, developer_id, deadline)
        pipe.execute()

    @staticmethod
    def queue_park(pipe, request_id: str, developer_id: str, deadline: float) -> None:
        """`park`, queued on a pipeline (a MULTI/EXEC one keeps it atomic)."""
        pipe.zadd(WAITS_KEY, {request_id: deadline})
        pipe.sadd(f"{WAITS_KEY}:developer:{developer_id}", request_id)

    def unpark(self, request_id: str, developer_id: str | None) -> None:
        """Forget a request that no longer waits."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.zrem(WAITS_KEY, request_id)
        if developer_id:
            pipe.srem(f"{WAITS_KEY}:developer:{developer_id}", request_id)
        pipe.execute()

    def waiting_for(self, developer_id: str) -> list[str]:
        """The requests of one developer that wait."""
        members = self.redis.smembers(f"{WAITS_KEY}:developer:{developer_id}")
        return sorted(m.decode() for m in members)

    def waiting(self, due_before: float | None = None) -> list[tuple[str, float]]:
        """Waiting requests with their deadlines, soonest first; only overdue ones if asked."""
        top = "+inf" if due_before is None else due_before
        return [(m.decode(), score) for m, score in
                self.redis.zrangebyscore(WAITS_KEY, "-inf", top, withscores=True)]
