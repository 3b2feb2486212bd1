"""The new portal's records as the approver reads them (Tyk CONTRACT §4)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

PENDING = "pending"
_USER_DESCRIPTOR = re.compile(r"^User#(\d+)$")


def _int_id(value: object) -> str:
    """An integer id as a string ("" if absent, zero or not an integer)."""
    if isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return str(value) if value > 0 else ""
    if isinstance(value, str) and value.isdigit() and int(value) > 0:
        return str(int(value))
    return ""


def _names(value: object) -> tuple[str, ...]:
    """Product names: a list, or the documented comma-separated string."""
    if isinstance(value, list):
        return tuple(str(v).strip() for v in value if str(v).strip())
    if isinstance(value, str):
        return tuple(n.strip() for n in value.split(",") if n.strip())
    return ()


@dataclass(frozen=True)
class AccessRequest:
    """One API access request: an app asking for products under a plan.

    The documented GET answer (`AccessRequest-basic`) names the user, plan and products;
    the webhook's `Message` (the same record) carries their ids (`ByUser`, `PlanID`,
    `ProductIDs`, `AppID`). Ids are read first, names kept for the fallback lookups.
    """

    id: str
    status: str
    user_id: str
    app_id: str
    plan_id: str
    product_ids: tuple[str, ...]
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
        user = _int_id(data.get("UserID")) or _int_id(data.get("ByUser"))
        if not user and isinstance(data.get("User"), str):
            match = _USER_DESCRIPTOR.match(data["User"].strip())
            user = match.group(1) if match else ""
        products = data.get("ProductIDs")
        product_ids = tuple(i for i in map(_int_id, products) if i) if isinstance(
            products, list) else ()
        return cls(
            id=_int_id(data.get("ID")),
            status=str(data.get("Status") or "").lower(),
            user_id=user,
            app_id=_int_id(data.get("AppID")) or _int_id(data.get("ClientID")),
            plan_id=_int_id(data.get("PlanID")),
            product_ids=product_ids,
            plan_name=str(data.get("Plan") or ""),
            product_names=_names(data.get("Products")),
            app_name=str(data.get("Client") or ""),
            catalogue=str(data.get("Catalogue") or ""),
            created_at=str(data.get("CreatedAt") or ""),
            raw=data,
        )


@dataclass(frozen=True)
class Decision:
    """What approving or rejecting did: done now, or found done already (and its status)."""

    already_processed: bool
    status: str = ""
