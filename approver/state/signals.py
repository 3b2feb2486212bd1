"""Signals kept in Redis: the domain lists `approver data update` loaded (newer than the
installed ones) and the DNS and RDAP answers, cached for their TTL."""

from __future__ import annotations

import json
import uuid

from approver.state.common import PREFIX, now_iso

KEY = PREFIX + "signals:"
CHUNK = 10_000


def _list_key(kind: str) -> str:
    return f"{KEY}list:{kind}"


class Signals:
    """Loaded domain lists and cached lookups in Redis."""

    def __init__(self, redis):
        self.redis = redis

    def replace_list(self, kind: str, domains: set[str], source: str) -> dict:
        """Make `domains` the `kind` list in force, at once for every worker; its meta."""
        temp = f"{KEY}loading:{uuid.uuid4().hex}"
        items = sorted(domains)
        pipe = self.redis.pipeline(transaction=False)
        for i in range(0, len(items), CHUNK):
            pipe.sadd(temp, *items[i:i + CHUNK])
        pipe.expire(temp, 3600)  # a load that dies half-way leaves nothing for long
        pipe.execute()
        meta = {"source": source, "loaded_at": now_iso(), "count": len(items)}
        pipe = self.redis.pipeline(transaction=True)
        pipe.rename(temp, _list_key(kind))
        pipe.persist(_list_key(kind))
        pipe.set(_list_key(kind) + ":meta", json.dumps(meta, sort_keys=True))
        pipe.execute()
        return meta

    def list_meta(self, kind: str) -> dict | None:
        """What was loaded for `kind` (source, loaded_at, count), or None."""
        raw = self.redis.get(_list_key(kind) + ":meta")
        return json.loads(raw) if raw else None

    def read(self, kinds: tuple[str, ...], candidates: list[str],
             cache_keys: list[str]) -> tuple[dict[str, tuple[dict, str | None] | None], list]:
        """In one round trip: per kind, the loaded list's meta and the first of `candidates`
        it holds (None if no list was loaded); the cached answers under `cache_keys`."""
        pipe = self.redis.pipeline(transaction=False)
        # The lists' metas and the cached answers in one MGET.
        pipe.mget([_list_key(kind) + ":meta" for kind in kinds]
                  + [KEY + "cache:" + k for k in cache_keys])
        for kind in kinds:
            for candidate in candidates:  # SISMEMBER each: SMISMEMBER needs Redis 6.2
                pipe.sismember(_list_key(kind), candidate)
        values, *found = pipe.execute()
        lists: dict[str, tuple[dict, str | None] | None] = {}
        for kind, meta in zip(kinds, values[:len(kinds)], strict=True):
            members = [found.pop(0) for _ in candidates]
            hit = next((c for c, m in zip(candidates, members, strict=True) if m), None)
            lists[kind] = (json.loads(meta), hit) if meta else None
        cached = [json.loads(v) if v else None for v in values[len(kinds):]]
        return lists, cached

    def cache(self, answers: dict[str, tuple[dict, int]]) -> None:
        """Keep lookups' answers (key → (answer, seconds)) for their TTL."""
        if not answers:
            return
        pipe = self.redis.pipeline(transaction=False)
        for key, (answer, ttl) in answers.items():
            pipe.set(KEY + "cache:" + key, json.dumps(answer), ex=max(int(ttl), 1))
        pipe.execute()
