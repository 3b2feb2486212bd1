"""The key ids (fingerprints, never raw keys) this service approved, kept for revocation."""

from __future__ import annotations

import json

from approver.state.common import PREFIX, now_iso


class KeyIds:
    """Approved key ids by developer (mixed into `Store`: `self.redis`)."""

    def remember_keys(self, developer_id: str, key_ids: list[str], pipe=None,
                      **about) -> None:
        """Record the key ids (hashes, never raw keys) approved for a developer.

        With `pipe`, the write is queued on it rather than sent."""
        if key_ids:
            value = json.dumps({**about, "at": now_iso()}, sort_keys=True)
            (self.redis if pipe is None else pipe).hset(
                f"{PREFIX}keys:{developer_id}", mapping=dict.fromkeys(key_ids, value)
            )

    def approved_keys(self, developer_id: str) -> dict[str, dict]:
        """Key id -> what we know of its approval, for one developer."""
        raw = self.redis.hgetall(f"{PREFIX}keys:{developer_id}")
        return {k.decode(): json.loads(v) for k, v in raw.items()}

    def mark_revoked(self, developer_id: str, key_id: str, reason: str) -> None:
        """Note that a key we approved has been revoked (kept for the record)."""
        key = f"{PREFIX}keys:{developer_id}"
        about = json.loads(self.redis.hget(key, key_id) or "{}")
        about.update(revoked_at=now_iso(), revoked_because=reason)
        self.redis.hset(key, key_id, json.dumps(about, sort_keys=True))
