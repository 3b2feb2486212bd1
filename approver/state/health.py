"""What workers last saw of the Dashboard and the rules, and calls refused for lack of
rights (read by /readyz, /metrics and `approver status`)."""

from __future__ import annotations

from approver.state.common import PREFIX, now_iso


class Health:
    """Health reports (mixed into `Store`: `self.redis`)."""

    def publish_health(self, **fields) -> None:
        """Record what a worker saw of the Dashboard and the rules, with the time."""
        self.redis.hset(f"{PREFIX}health", mapping={
            **{k: "" if v is None else str(v) for k, v in fields.items()}, "at": now_iso()})

    def note_refusal(self, call: str, ttl: int = 3600) -> None:
        """Note an API call refused for lack of rights (shown by health for `ttl` seconds)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(f"{PREFIX}health:refused", call, now_iso())
        pipe.expire(f"{PREFIX}health:refused", ttl)
        pipe.execute()

    def refusals(self) -> dict[str, str]:
        """Calls refused for lack of rights lately, with when: {"classic: PUT /…": at}."""
        raw = self.redis.hgetall(f"{PREFIX}health:refused")
        return {k.decode(): v.decode() for k, v in sorted(raw.items())}

    def health(self) -> dict:
        """The last published health fields."""
        return {k.decode(): v.decode() for k, v in self.redis.hgetall(f"{PREFIX}health").items()}
