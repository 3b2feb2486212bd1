"""The classic portal's adapter: key requests through the Tyk Dashboard API."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator

from approver.pipeline.sources import (
    PENDING_KEY,
    Applied,
    MalformedId,
    RevocationFailed,
    fingerprint,
)
from approver.rules import FactContext


class ClassicSource:
    """The classic portal, through the Tyk Dashboard API."""

    name = "classic"
    takes_hints = False  # the Dashboard's records carry every id; a webhook adds nothing
    # Policies change rarely: a decision uses one read at most this old (per process).
    POLICY_TTL = 30.0

    def __init__(self, dashboard, policy_ttl: float | None = None):
        self.dashboard = dashboard
        self.policy_ttl = self.POLICY_TTL if policy_ttl is None else policy_ttl
        self._policies: dict[str, tuple[float, dict]] = {}

    def _policy(self, policy_id: str) -> dict:
        """A policy's raw record, from a cache of `policy_ttl` seconds; NotFound as the API.

        A policy Tyk answers NotFound for is dropped from the cache (never cached as absent).
        """
        from approver.tyk import NotFound

        now = time.monotonic()
        cached = self._policies.get(policy_id)
        if cached is not None and now - cached[0] < self.policy_ttl:
            return cached[1]
        try:
            raw = self.dashboard.get_policy(policy_id).raw
        except NotFound:
            self._policies.pop(policy_id, None)
            raise
        if self.policy_ttl > 0:
            if len(self._policies) >= 1000:
                self._policies.clear()
            self._policies[policy_id] = (now, raw)
        return raw

    def fetch(self, native_id: str, hint: dict | None = None):
        from approver.tyk import BadRequest, NotFound

        try:
            request = self.dashboard.get_key_request(native_id)
        except NotFound:
            return None
        except BadRequest as exc:
            # Tyk CONTRACT §3.3: a 400 on a read by id is Tyk's "Invalid … ID.": no
            # request can have it (retrying would not help).
            if exc.status == 400:
                raise MalformedId(str(exc)) from None
            raise
        return ClassicRequest(request)

    def gather(self, request, billing: dict | None) -> FactContext:
        from approver.tyk import NotFound

        kr = request.tyk
        developer = self._developer(request)
        policies = {}
        for policy_id in kr.policies:
            # Tyk stores requests for policies that do not exist (Tyk CONTRACT §3.1): the
            # policy facts are then unknown, which fails safe to review.
            with contextlib.suppress(NotFound):
                policies[policy_id] = self._policy(policy_id)
        return FactContext(request=kr.raw, developer=developer.raw if developer else None,
                           policies=policies, catalogue=None, billing=billing,
                           extra={"portal": self.name})

    def approve(self, request) -> Applied:
        approval = self.dashboard.approve_key_request(request.tyk)
        # Only one-way fingerprints of key ids are kept: without key hashing, a key's id
        # is the key itself (docs/tyk-compatibility.md).
        keys = tuple(map(fingerprint, approval.key_ids))
        return Applied(approval.already_processed, keys,
                       held_before=tuple(map(fingerprint, approval.held_before)),
                       key_pending=not keys and not approval.already_processed
                       and request.tyk.developer_id != "")

    def held(self, request) -> tuple[str, ...]:
        developer = self._developer(request)
        return tuple(map(fingerprint, developer.credential_ids(request.policies))) \
            if developer else ()

    def approved_elsewhere(self, request, held_before: tuple[str, ...]) -> Applied:
        developer, keys = self._gained(request, held_before)
        # No key yet (secure key approval): the one the developer generates is told apart
        # from older ones by `held_before` when it is revoked.
        return Applied(True, keys, held_before=tuple(held_before),
                       key_pending=not keys and developer is not None)

    def _gained(self, request, held_before: tuple[str, ...]):
        """(the developer read now, fingerprints of what they hold for the request's
        policies and did not hold before)."""
        tyk = request.tyk
        developer = self.dashboard.get_developer(tyk.developer_id) if tyk.developer_id else None
        before = set(held_before)
        return developer, tuple(
            fp for fp in map(fingerprint, developer.credential_ids(request.policies))
            if fp not in before) if developer else ()

    def _developer(self, request):
        """The request's developer: embedded, else read once and kept on the request."""
        tyk = request.tyk
        if tyk.developer is not None or not tyk.developer_id:
            return tyk.developer
        developer = self.dashboard.get_developer(tyk.developer_id)
        # As if embedded: held() and the approval's "before" reuse this read.
        request.tyk = dataclasses.replace(tyk, developer=developer)
        return developer

    def deny(self, request, reason: str, held_before: tuple[str, ...] | None = None) -> Applied:
        # The classic portal keeps no reason: declining deletes the request (Tyk CONTRACT
        # §3.1); ours is in the decision log.
        deleted = self.dashboard.delete_key_request(request.id)
        if held_before is None:
            return Applied(already_processed=not deleted)
        # A person may have approved it between our read and the DELETE, which deletes an
        # approved request too and leaves its key: what the developer holds now says so
        # (the keys they gained). A key not generated yet (secure key approval) cannot be
        # seen here.
        _, gained = self._gained(request, held_before)
        return Applied(already_processed=not deleted, key_ids=gained,
                       held_before=held_before if gained else ())

    def pending_ids(self) -> Iterator[str]:
        # Page by page (Tyk's p=1..Pages), read as the reconciler goes: one page in memory.
        return (r.id for r in self.dashboard.iter_key_requests(approved=False))

    def revoke(self, developer_id: str, key_id: str, about: dict | None = None) -> bool:
        """Revoke what an approval produced, found in the developer's record now.

        `key_id` is a key's or OAuth client's fingerprint (or, kept before fingerprints,
        its id), or `pending:` when the key did not exist yet at approval (secure key
        approval): then the keys for the approval's policies that the developer did not
        hold before are its keys. Keys go through the developer-keys endpoint, OAuth
        clients through their own; a 404 from either for an id the record lists is an
        error, never "revoked".
        """
        from approver.tyk import NotFound

        try:
            developer = self.dashboard.get_developer(developer_id)
        except NotFound:
            return False
        clients = {c for ids in developer.oauth_clients.values() for c in ids}
        held = {fingerprint(i): i for i in [*developer.keys, *clients]}
        if key_id.startswith(PENDING_KEY):
            before = set((about or {}).get("held_before") or [])
            policies = tuple((about or {}).get("policies") or ())
            found = [i for i in developer.keys_for(policies) if fingerprint(i) not in before]
            found += [c for p in policies for c in developer.oauth_clients.get(p, ())
                      if fingerprint(c) not in before]
        else:
            found = [held.get(key_id) or (key_id if key_id in developer.keys or key_id in clients
                                          else None)]
        targets = [i for i in found if i]
        for target in targets:
            oauth = target in clients
            done = (self.dashboard.delete_oauth_client(target) if oauth
                    else self.dashboard.revoke_developer_key(developer_id, target))
            if not done:
                raise RevocationFailed(
                    f"developer {developer_id} holds {'OAuth client' if oauth else 'key'} "
                    f"{fingerprint(target)}, but Tyk's endpoint answered that it does not exist"
                    " (with hashed keys, `enable_delete_key_by_hash` may be off)")
        if targets:
            self._gone_after_revoking(developer_id, targets)
        return bool(targets)

    def _gone_after_revoking(self, developer_id: str, targets: list[str]) -> None:
        """RevocationFailed unless the developer, read back, no longer holds the targets
        (a delete answered done is not taken for one: docs/tyk-compatibility.md)."""
        after = self.dashboard.get_developer(developer_id)
        held = {*after.keys, *(c for ids in after.oauth_clients.values() for c in ids)}
        kept = [fingerprint(t) for t in targets if t in held]
        if kept:
            raise RevocationFailed(
                f"Tyk answered the revocation, but developer {developer_id} still holds "
                f"{', '.join(kept)}: not recorded as revoked")

    def policy_tags(self, policy_id: str) -> set[str]:
        """A policy's tags, through the same cache as decisions (a revocation asks per key)."""
        from approver.tyk import NotFound, Policy

        try:
            return set(Policy.from_json(self._policy(policy_id)).tags)
        except NotFound:
            return set()

    def developer_id_by_email(self, email: str) -> str | None:
        from approver.tyk import NotFound

        try:
            return self.dashboard.get_developer_by_email(email).id
        except NotFound:
            return None

    def version(self) -> str | None:
        return self.dashboard.version()

    def ping(self) -> str | None:
        """The Dashboard answers, and lets its user read what decisions read; the
        organisation its user serves."""
        org = self.dashboard.ping()
        # Tyk CONTRACT §3.0: a user with only portal rights may be refused policy reads,
        # which every decision makes (docs/tyk-compatibility.md, permissions).
        self.dashboard.list_policies(page=1)
        return org


class ClassicRequest:
    """A classic-portal key request as the pipeline sees it."""

    def __init__(self, tyk_request):
        self.tyk = tyk_request
        self.id = tyk_request.id
        self.ref = tyk_request.id
        self.developer_id = tyk_request.developer_id
        self.policies = tuple(tyk_request.policies)
        self.raw = tyk_request.raw

    @property
    def pending(self) -> bool:
        return not self.tyk.approved

    @property
    def approved(self) -> bool:
        # Declining deletes a classic request (Tyk CONTRACT §3.1): one that exists and is
        # not pending was approved.
        return bool(self.tyk.approved)
