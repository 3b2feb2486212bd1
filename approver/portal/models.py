"""The new portal's records as the approver reads them (Tyk CONTRACT §4)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

PENDING = "pending"
_USER_DESCRIPTOR = re.compile(r"^User#(\d+)$")


def int_id(value: object) -> str:
    """An integer id as a string ("" if absent, zero or not an integer)."""
    if isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return str(value) if value > 0 else ""
    if isinstance(value, str) and value.isdigit() and int(value) > 0:
        return str(int(value))
    return ""


def _names(value: object) -> tuple[str, ...]:
    """Product names: a list, or one string (Tyk CONTRACT corrections: both are answered)."""
    if isinstance(value, list):
        return tuple(str(v).strip() for v in value if str(v).strip())
    if isinstance(value, str) and value.strip():
        return (value.strip(),)
    return ()


def user_id(descriptor: object) -> str:
    """The user id a `User#<id>` descriptor names ("" if it names none)."""
    match = _USER_DESCRIPTOR.match(descriptor.strip()) if isinstance(descriptor, str) else None
    return int_id(match.group(1)) if match else ""


@dataclass(frozen=True)
class AccessRequest:
    """One API access request as the admin API answers it (`AccessRequest-index-elem`).

    Recorded answers name things, they carry no ids (Tyk CONTRACT corrections): the user
    as `User#<id>`, the plan and products by name, the app (`Client`) by name. A single
    access request read under its app has no `ID`/`Status`. `Credentials` (a credential
    holds the key itself) never reach `raw`.
    """

    id: str
    status: str
    user_id: str
    plan_name: str = ""
    product_names: tuple[str, ...] = ()
    app_name: str = ""
    catalogue: str = ""
    created_at: str = ""
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def pending(self) -> bool:
        return self.status == PENDING

    @classmethod
    def from_json(cls, data: dict) -> AccessRequest:
        return cls(
            id=int_id(data.get("ID")),
            status=str(data.get("Status") or "").lower(),
            user_id=user_id(data.get("User")),
            plan_name=str(data.get("Plan") or "").strip(),
            product_names=_names(data.get("Products")),
            app_name=str(data.get("Client") or ""),
            catalogue=str(data.get("Catalogue") or ""),
            created_at=str(data.get("CreatedAt") or ""),
            raw={k: v for k, v in data.items() if k != "Credentials"},
        )


def credential_ids(items: object) -> frozenset[str]:
    """What tells credentials apart, as listed under an access request (`Credential`):
    their `ID`, `CredentialHash` and `OAuthClientID`, never the credential itself."""
    found = set()
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        if int_id(item.get("ID")):
            found.add("id:" + int_id(item.get("ID")))
        for name, tag in (("CredentialHash", "hash:"), ("OAuthClientID", "oauth:")):
            if isinstance(item.get(name), str) and item[name].strip():
                found.add(tag + item[name].strip())
    return frozenset(found)


@dataclass(frozen=True)
class AppAccess:
    """One access request of an app with what tells its credentials apart (no secrets)."""

    id: str
    status: str
    product_names: tuple[str, ...]
    credentials: frozenset[str]


@dataclass(frozen=True)
class Decision:
    """What approving or rejecting did: done now, or found done already (and its status)."""

    already_processed: bool
    status: str = ""
