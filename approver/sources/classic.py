"""The classic portal's adapter: key requests through the Tyk Dashboard API."""

from __future__ import annotations

import contextlib
import time

from approver.rules import FactContext
from approver.sources import Applied


class ClassicSource:
    """The classic portal, through the Tyk Dashboard API."""

    name = "classic"
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

    def fetch(self, native_id: str):
        from approver.tyk import NotFound

        try:
            request = self.dashboard.get_key_request(native_id)
        except NotFound:
            return None
        return ClassicRequest(request)

    def gather(self, request, billing: dict | None) -> FactContext:
        from approver.tyk import NotFound

        kr = request.tyk
        developer = kr.developer
        if developer is None and kr.developer_id:
            developer = self.dashboard.get_developer(kr.developer_id)
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
        return Applied(approval.already_processed, tuple(approval.key_ids))

    def deny(self, request, reason: str) -> Applied:
        # The classic portal keeps no reason: declining deletes the request (Tyk CONTRACT
        # §3.1); ours is in the decision log.
        return Applied(already_processed=not self.dashboard.delete_key_request(request.id))

    def pending_ids(self) -> list[str]:
        return [r.id for r in self.dashboard.list_key_requests(approved=False)]

    def revoke(self, developer_id: str, key_id: str) -> bool:
        return self.dashboard.revoke_developer_key(developer_id, key_id)

    def policy_tags(self, policy_id: str) -> set[str]:
        from approver.tyk import NotFound

        try:
            return set(self.dashboard.get_policy(policy_id).tags)
        except NotFound:
            return set()

    def developer_id_by_email(self, email: str) -> str | None:
        from approver.tyk import NotFound

        try:
            return self.dashboard.get_developer_by_email(email).id
        except NotFound:
            return None

    def ping(self) -> None:
        self.dashboard.ping()


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
