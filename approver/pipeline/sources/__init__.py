"""Where key requests come from and where decisions go: one adapter per Tyk portal.

A request is known everywhere else (state, locks, job ids, the decision log) by its
reference: the classic portal's ids as they are (24-hex ObjectIds), the new portal's
integer ids as `portal-<id>`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from approver.errors import ApproverError
from approver.rules import FactContext

# The key id kept for an approval whose key did not exist yet (secure key approval).
PENDING_KEY = "pending:"


def fingerprint(key_id: str) -> str:
    """A one-way fingerprint of a Tyk key or OAuth client id, kept in its place.

    Without key hashing a key's id is the key itself (docs/tyk-compatibility.md), so no
    id is stored: revocation finds the key again in the developer's record by this.
    """
    return "fp:" + hashlib.sha256(key_id.encode()).hexdigest()[:24]


def shown(key_id: str) -> str:
    """A kept key id as it may be logged: versions before fingerprints kept raw ids."""
    return key_id if key_id.startswith(("fp:", PENDING_KEY)) else fingerprint(key_id)


@dataclass(frozen=True)
class Applied:
    """What applying a decision did: whether it was done already, and the key ids approved.

    `key_pending`: approved, but the key does not exist yet (secure key approval); then
    `held_before` (fingerprints of what the developer held for the policies) tells its
    key apart when it appears. Key ids from a deny: Tyk approved the request before the
    deny reached it, and these are the keys the developer gained.
    """

    already_processed: bool
    key_ids: tuple[str, ...] = ()
    held_before: tuple[str, ...] = ()
    key_pending: bool = False


class Request(Protocol):
    """What the pipeline needs of a key request, whichever portal it is from."""

    ref: str
    id: str
    developer_id: str
    policies: tuple[str, ...]
    raw: dict

    @property
    def pending(self) -> bool: ...

    @property
    def approved(self) -> bool: ...


class Source(Protocol):
    """One portal: read requests, gather their facts, apply decisions, revoke keys."""

    name: str
    takes_hints: bool  # whether `fetch` uses what a webhook said (`Store.hint`)

    def fetch(self, native_id: str, hint: dict | None = None) -> Request | None:
        """The request now, or None if the portal does not know it (yet).

        MalformedId if no request can have this id. `hint`: what a webhook said, which
        is checked against the records before it is used.
        """

    def gather(self, request: Request, billing: dict | None) -> FactContext: ...
    def approve(self, request: Request) -> Applied: ...
    def deny(self, request: Request, reason: str,
             held_before: tuple[str, ...] | None = None) -> Applied:
        """Decline in Tyk. `held_before` (what the developer held when it was decided):
        keys gained since are reported, as an approval made in Tyk meanwhile."""
    def pending_ids(self) -> Iterable[str]: ...

    def held(self, request: Request) -> tuple[str, ...]:
        """Fingerprints of the credentials the developer holds now for the request's
        policies: kept when the request is left for a person, to tell which key an
        approval made in Tyk produced."""

    def approved_elsewhere(self, request: Request, held_before: tuple[str, ...]) -> Applied:
        """What an approval made in Tyk itself produced: the credentials the developer
        holds now for the request's policies and did not hold before (`held`)."""

    def revoke(self, developer_id: str, key_id: str, about: dict | None = None) -> bool:
        """Revoke a key this service approved (`about`: what was kept of its approval).

        False if it was gone already; an error if it could not be revoked.
        """

    def policy_tags(self, policy_id: str) -> set[str]: ...
    def developer_id_by_email(self, email: str) -> str | None: ...
    def ping(self) -> str | None:
        """Check the portal answers; the organisation its credential serves, if it says."""

    # Optional: `version() -> str | None`, the portal's version where Tyk exposes it (the
    # classic Dashboard may; the new portal's admin API does not).


class RevocationFailed(ApproverError):
    """Tyk would not revoke a key its records say exists."""


class RevocationRefused(RevocationFailed):
    """The service would not revoke: doing so could take away more than what lapsed, or
    it could not tell. `event` names the outcome in the decision log; `details` says more
    (ids and names only, never a credential)."""

    def __init__(self, message: str, event: str, **details):
        super().__init__(message)
        self.event, self.details = event, details


class MalformedId(ApproverError):
    """The portal says (or its id rules say) that no request can have this id."""


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
