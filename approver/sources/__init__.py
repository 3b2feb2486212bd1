"""Where key requests come from and where decisions go: one adapter per Tyk portal.

A request is known everywhere else (state, locks, job ids, the decision log) by its
reference: the classic portal's ids as they are (24-hex ObjectIds), the new portal's
integer ids as `portal-<id>`.
"""

from __future__ import annotations

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
