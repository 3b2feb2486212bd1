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

    def first_refusal(self, developer_id: str, key_id: str, event: str,
                      ttl: int = 86400) -> bool:
        """Whether a revocation refused this way (`event`) is the first for this key in
        `ttl` seconds, across every process (`key_id`: as logged, a fingerprint)."""
        return bool(self.redis.set(
            f"{PREFIX}health:revocation-refused:{event}:{developer_id}:{key_id}"[:300],
            now_iso(), nx=True, ex=ttl))

    def served_org(self) -> str | None:
        """The Tyk organisation the Dashboard credential serves, as a worker last saw it."""
        return (self.redis.hget(f"{PREFIX}health", "org_id") or b"").decode() or None

    def first_sight_of_org(self, org: str, ttl: int = 86400) -> bool:
        """Whether an event of this organisation (one not served) is the first in `ttl`
        seconds, across every process."""
        return bool(self.redis.set(f"{PREFIX}health:foreign-org:{org[:64]}", now_iso(),
                                   nx=True, ex=ttl))

    def health(self) -> dict:
        """The last published health fields."""
        return {k.decode(): v.decode() for k, v in self.redis.hgetall(f"{PREFIX}health").items()}
