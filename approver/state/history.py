"""What the service has seen of a developer, their email and their domain: velocity over
bounded windows, and denials and revocations, kept in Redis (read by the `history.*` facts).

A person is known by their normalised email (so `x+alias@` counts once), else their id.
Every window keeps at most KEEP members and expires with its length; history expires a
year after its last change.
"""

from __future__ import annotations

import hashlib
import time

from approver.state.common import PREFIX

KEY = PREFIX + "history:"
KEEP = 10_000
HISTORY_TTL = 365 * 86400
DAY, HOUR = 86400, 3600


def _digest(text: str) -> str:
    # Emails are personal: keys hold a digest, never the address.
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def person(developer_id: str, email: str | None) -> str | None:
    """How a person is counted: their normalised email's digest, else their developer id
    (None: neither is known, nothing to count by)."""
    if email:
        return "e:" + _digest(email)
    return "d:" + developer_id if developer_id else None


def _identities(developer_id: str, digest: str | None, domain: str | None) -> list[str]:
    found = [f"{KEY}dev:{developer_id}"] if developer_id else []
    if digest:
        found.append(f"{KEY}email:{digest}")
    if domain:
        found.append(f"{KEY}domain:{domain}")
    return found


def _window(pipe, key: str, member: str, now: float, length: int) -> None:
    pipe.zadd(key, {member: now})
    pipe.zremrangebyscore(key, "-inf", now - length)
    pipe.zremrangebyrank(key, 0, -KEEP - 1)  # the newest KEEP stay
    pipe.expire(key, length)


class History:
    """Velocity windows and denial/revocation history in Redis."""

    # The facts `read` answers.
    FACTS = ("history.requests_by_developer_1h", "history.requests_from_domain_24h",
             "history.developers_from_domain_24h", "history.previously_denied",
             "history.keys_revoked", "history.denied_from_domain",
             "history.keys_revoked_from_domain")

    def __init__(self, redis):
        self.redis = redis

    def record_decision(self, pipe, ref: str, developer_id: str, email: str | None,
                        domain: str | None, denied: bool, now: float | None = None) -> None:
        """Queue on `pipe`: this request was decided (velocity), denied if `denied`.

        Idempotent for velocity (a request is one member however often it is decided).
        """
        now = time.time() if now is None else now
        who, digest = person(developer_id, email), _digest(email) if email else None
        if domain:
            _window(pipe, f"{KEY}domain-requests:{domain}", ref, now, DAY)
            if who:
                _window(pipe, f"{KEY}domain-people:{domain}", who, now, DAY)
        if who:
            _window(pipe, f"{KEY}person-requests:{who}", ref, now, HOUR)
        if developer_id and (email or domain):
            # What a revocation (which knows only the developer id) counts against.
            pipe.hset(f"{KEY}dev:{developer_id}",
                      mapping={"email": digest or "", "domain": domain or ""})
        for key in _identities(developer_id, digest, domain):
            if denied:
                pipe.hincrby(key, "denied", 1)
            pipe.expire(key, HISTORY_TTL)

    def record_revoked(self, developer_id: str) -> None:
        """A key of this developer was revoked: counted for them, their email and domain."""
        about = self.redis.hmget(f"{KEY}dev:{developer_id}", "email", "domain")
        digest, domain = ((v.decode() if v else None) for v in about)
        pipe = self.redis.pipeline(transaction=True)
        for key in _identities(developer_id, digest, domain):
            pipe.hincrby(key, "revoked", 1)
            pipe.expire(key, HISTORY_TTL)
        pipe.execute()

    def read(self, ref: str, developer_id: str, email: str | None, domain: str | None,
             now: float | None = None) -> dict[str, int | bool | None]:
        """The history facts for a request now, this request counted once (None: no domain)."""
        now = time.time() if now is None else now
        who = person(developer_id, email)
        pipe = self.redis.pipeline(transaction=False)
        # With no one to count by, the person's window is an empty one (answered: unknown).
        windows = [(f"{KEY}person-requests:{who or ''}", ref, HOUR)]
        if domain:
            windows += [(f"{KEY}domain-requests:{domain}", ref, DAY),
                        (f"{KEY}domain-people:{domain}", who or "", DAY)]
        for key, member, length in windows:
            pipe.zcount(key, now - length, "+inf")
            pipe.zscore(key, member)
        dev_key, email_key = f"{KEY}dev:{developer_id}", f"{KEY}email:{_digest(email or '')}"
        for key in (dev_key, email_key, f"{KEY}domain:{domain}"):
            pipe.hmget(key, "denied", "revoked")
        found = pipe.execute()
        counts = [int(found[i]) + (found[i + 1] is None) for i in range(0, 2 * len(windows), 2)]
        dev, mail, dom = ([int(v or 0) for v in pair] for pair in found[2 * len(windows):])
        if not developer_id:
            dev = [0, 0]
        if not email:
            mail = [0, 0]
        return {
            "history.requests_by_developer_1h": counts[0] if who else None,
            "history.requests_from_domain_24h": counts[1] if domain else None,
            "history.developers_from_domain_24h": counts[2] if domain and who else None,
            "history.previously_denied": bool(dev[0] or mail[0]),
            "history.keys_revoked": max(dev[1], mail[1]),
            "history.denied_from_domain": dom[0] if domain else None,
            "history.keys_revoked_from_domain": dom[1] if domain else None,
        }
