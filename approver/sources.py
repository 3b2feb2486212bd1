"""Where key requests come from and where decisions go: one adapter per Tyk portal.

A request is known everywhere else (state, locks, job ids, the decision log) by its
reference: the classic portal's ids as they are (24-hex ObjectIds), the new portal's
integer ids as `portal-<id>`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Protocol

from approver.errors import ApproverError
from approver.rules import FactContext


@dataclass(frozen=True)
class Applied:
    """What applying a decision did: whether it was done already, and the key ids approved."""

    already_processed: bool
    key_ids: tuple[str, ...] = ()


class Request(Protocol):
    """What the pipeline needs of a key request, whichever portal it is from."""

    ref: str
    id: str
    developer_id: str
    policies: tuple[str, ...]
    raw: dict

    @property
    def pending(self) -> bool: ...


class Source(Protocol):
    """One portal: read requests, gather their facts, apply decisions, revoke keys."""

    name: str

    def fetch(self, native_id: str) -> Request | None: ...
    def gather(self, request: Request, billing: dict | None) -> FactContext: ...
    def approve(self, request: Request) -> Applied: ...
    def deny(self, request: Request, reason: str) -> Applied: ...
    def pending_ids(self) -> list[str]: ...
    def revoke(self, developer_id: str, key_id: str) -> bool: ...
    def policy_tags(self, policy_id: str) -> set[str]: ...
    def developer_id_by_email(self, email: str) -> str | None: ...
    def ping(self) -> None: ...


class ClassicSource:
    """The classic portal, through the Tyk Dashboard API."""

    name = "classic"

    def __init__(self, dashboard):
        self.dashboard = dashboard

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
                policies[policy_id] = self.dashboard.get_policy(policy_id).raw
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


class UnknownSource(ApproverError):
    """A reference names a portal this service is not configured for."""


def split(ref: str) -> tuple[str, str]:
    """(portal name, native id) of a request reference."""
    if ref.startswith("portal-"):
        return "portal", ref[len("portal-"):]
    return "classic", ref


def ref(portal: str, native_id: str) -> str:
    """The reference of a request from one portal."""
    return f"portal-{native_id}" if portal == "portal" else native_id
