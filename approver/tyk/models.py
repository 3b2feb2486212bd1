"""Small read-only views of the Tyk Dashboard's JSON objects."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

# Developer fields that hold credentials or their history; dropped from `raw` so they never
# travel past the client (Tyk CONTRACT §3.2 shows them in the Developer object).
_DEVELOPER_SECRET_FIELDS = frozenset(
    {"password", "Password", "PWHistory", "pw_history", "nonce", "sso_key"}
)
# A key request may carry the developer's JWT secret (Tyk CONTRACT §3.1).
_KEY_REQUEST_SECRET_FIELDS = frozenset({"jwt_secret"})


def _str(value: Any) -> str:
    """A string, with None as ''."""
    return "" if value is None else str(value)


def _dict(value: Any) -> dict:
    """A dict, or {} for anything else."""
    return value if isinstance(value, dict) else {}


def _strings(value: Any) -> tuple[str, ...]:
    """A tuple of non-empty strings from a list, a single string or None."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value if v not in (None, ""))
    return ()


def _fields(value: Any) -> dict[str, str]:
    """Free-form form answers as str → str; None becomes ''."""
    return {str(k): _str(v) for k, v in _dict(value).items()}


def _id(d: dict) -> str:
    """The object's id: `id`, or `_id` in older releases (Tyk CONTRACT §3.1)."""
    return _str(d.get("id") or d.get("_id"))


def sanitize_developer(d: dict) -> dict:
    """A deep copy of a Developer object without passwords or OAuth client secrets."""
    clean = {k: copy.deepcopy(v) for k, v in d.items() if k not in _DEVELOPER_SECRET_FIELDS}
    clients = clean.get("oauth_clients")
    if isinstance(clients, dict):
        for apps in clients.values():
            for app in apps if isinstance(apps, list) else ():
                if isinstance(app, dict):
                    app.pop("secret", None)
    return clean


@dataclass(frozen=True)
class Developer:
    """A portal developer (`/api/portal/developers/{id}`)."""

    id: str
    email: str = ""
    org_id: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    created_at: str = ""
    inactive: bool = False
    keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    oauth_clients: dict[str, tuple[str, ...]] = field(default_factory=dict)
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: dict | None) -> Developer:
        """Parse Tyk's Developer JSON, tolerating missing fields."""
        d = _dict(d)
        # Not `api_keys`: older records map API id -> key id there, not key id -> policy ids
        # (tests/fixtures/tyk/README.md), so a record with only that holds no known keys.
        keys = d.get("keys")
        clients = {
            str(policy): tuple(
                _str(app.get("client_id"))
                for app in (apps if isinstance(apps, list) else ())
                if isinstance(app, dict) and app.get("client_id")
            )
            for policy, apps in _dict(d.get("oauth_clients")).items()
        }
        return cls(
            id=_id(d),
            email=_str(d.get("email")),
            org_id=_str(d.get("org_id")),
            fields=_fields(d.get("fields")),
            created_at=_str(d.get("date_created")),
            inactive=bool(d.get("inactive")),
            keys={str(k): _strings(v) for k, v in _dict(keys).items()},
            oauth_clients={p: ids for p, ids in clients.items() if ids},
            raw=sanitize_developer(d),
        )

    def keys_for(self, policies: tuple[str, ...] | list[str]) -> tuple[str, ...]:
        """Ids of the developer's keys holding any of the given policies."""
        wanted = set(policies)
        return tuple(k for k, held in self.keys.items() if wanted.intersection(held))

    def credential_ids(self, policies: tuple[str, ...] | list[str]) -> tuple[str, ...]:
        """Ids of the developer's keys and OAuth clients holding any of the given policies."""
        clients = [c for p in policies for c in self.oauth_clients.get(p, ())]
        return tuple(dict.fromkeys([*self.keys_for(policies), *clients]))


@dataclass(frozen=True)
class KeyRequest:
    """A portal key request (`/api/portal/requests/{id}`)."""

    id: str
    org_id: str = ""
    developer_id: str = ""
    policies: tuple[str, ...] = ()
    fields: dict[str, str] = field(default_factory=dict)
    approved: bool = False
    created_at: str = ""
    version: str = ""
    catalogue_entry: dict | None = None
    developer: Developer | None = None
    key: str = ""
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: dict | None) -> KeyRequest:
        """Parse Tyk's KeyRequest JSON, tolerating missing fields."""
        d = _dict(d)
        # Tyk CONTRACT §3.1: `apply_policies` when non-empty, else the deprecated `for_plan`.
        policies = _strings(d.get("apply_policies")) or _strings(d.get("for_plan"))
        embedded = d.get("portal_developer")
        developer = Developer.from_json(embedded) if _dict(embedded) else None
        catalogue = d.get("catalogue_entry")
        # The embedded developer is copied once, without its secrets, by Developer.
        raw = {k: developer.raw if developer and k == "portal_developer" else copy.deepcopy(v)
               for k, v in d.items() if k not in _KEY_REQUEST_SECRET_FIELDS}
        return cls(
            id=_id(d),
            org_id=_str(d.get("org_id")),
            developer_id=_str(d.get("by_user")) or (developer.id if developer else ""),
            policies=tuple(dict.fromkeys(policies)),
            fields=_fields(d.get("fields")),
            approved=bool(d.get("approved")),
            created_at=_str(d.get("date_created")),
            version=_str(d.get("version")),
            catalogue_entry=copy.deepcopy(catalogue) if _dict(catalogue) else None,
            developer=developer,
            key=_str(d.get("key")),
            raw=raw,
        )


@dataclass(frozen=True)
class Policy:
    """A security policy (`/api/portal/policies/{id}`)."""

    id: str
    name: str = ""
    tags: tuple[str, ...] = ()
    active: bool = True
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: dict | None) -> Policy:
        """Parse Tyk's Policy JSON, tolerating missing fields."""
        d = _dict(d)
        # Tyk CONTRACT §3.3 lists both `active` and `is_inactive`; either can switch it off.
        active = d.get("active", True) is not False and not d.get("is_inactive")
        return cls(
            id=_id(d),
            name=_str(d.get("name")),
            tags=_strings(d.get("tags")),
            active=bool(active),
            raw=copy.deepcopy(d),
        )


@dataclass(frozen=True)
class Approval:
    """The outcome of approving a key request: which keys it produced, never the keys."""

    already_processed: bool
    key_ids: tuple[str, ...] = ()
    # Ids of the keys and OAuth clients the developer held for these policies before.
    held_before: tuple[str, ...] = ()
