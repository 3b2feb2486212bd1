"""Where key requests come from and where decisions go: one adapter per Tyk portal.

A request is known everywhere else (state, locks, job ids, the decision log) by its
reference: the classic portal's ids as they are (24-hex ObjectIds), the new portal's
integer ids as `portal-<id>`.
"""

from __future__ import annotations

import contextlib
import time
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

    @property
    def approved(self) -> bool: ...


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

    @property
    def approved(self) -> bool:
        # Declining deletes a classic request (Tyk CONTRACT §3.1): one that exists and is
        # not pending was approved.
        return bool(self.tyk.approved)


# New-portal products and plans become "policies" under these prefixes, so that their
# integer ids can never collide with each other or with classic 24-hex policy ids.
PRODUCT_PREFIX = "product-"
PLAN_PREFIX = "plan-"
# Every plan's policy carries this tag (docs/portal.md: the fact mapping).
PLAN_TAG = "plan"


class PortalSource:
    """The Tyk (Enterprise) Developer Portal, through its admin API (Tyk CONTRACT §4).

    Its access requests are mapped onto the classic rule vocabulary (docs/portal.md):
    the app's custom attributes are `request.fields`, the user is the developer, and the
    products and the plan are the requested policies, with ids `product-<id>` and
    `plan-<id>`.
    """

    name = "portal"

    def __init__(self, portal):
        self.portal = portal

    def fetch(self, native_id: str):
        from approver.tyk import NotFound

        if not native_id.isdigit():
            return None
        try:
            access_request = self.portal.get_access_request(native_id)
        except NotFound:
            return None
        return PortalRequest(access_request, native_id, *self._offer(access_request))

    def _offer(self, ar) -> tuple[str, tuple[str, ...]]:
        """(plan id, product ids): the record's ids, else found by the names it gives."""
        plan_id, product_ids = ar.plan_id, ar.product_ids
        if not plan_id and ar.plan_name:
            plan_id = next((str(p["ID"]) for p in self.portal.list_plans()
                            if ar.plan_name in (p.get("Name"), p.get("DisplayName"))), "")
        if not product_ids and ar.product_names:
            by_name = {}
            for product in self.portal.list_products():
                for key in ("DisplayName", "Name"):
                    by_name.setdefault(product.get(key), str(product.get("ID")))
            product_ids = tuple(by_name[n] for n in ar.product_names if n in by_name)
        return plan_id, tuple(product_ids)

    def gather(self, request, billing: dict | None) -> FactContext:
        from approver.portal.client import custom_attributes
        from approver.tyk import NotFound

        ar = request.portal
        developer = None
        if request.developer_id:
            with contextlib.suppress(NotFound):
                user = self.portal.get_user(request.developer_id)
                developer = _developer(request.developer_id, user, self._user_fields(
                    request.developer_id, user))
        app = None
        if ar.app_id:
            with contextlib.suppress(NotFound):
                app = self.portal.get_app(ar.app_id)
        policies, products, plan = {}, [], None
        for policy_id in request.policies:
            # A product or plan deleted since: its facts are unknown, which fails to review.
            with contextlib.suppress(NotFound):
                record = self._record(policy_id)
                policies[policy_id] = _policy(policy_id, record)
                if policy_id.startswith(PLAN_PREFIX):
                    plan = record
                else:
                    products.append(record)
        fields = custom_attributes(app.get("CustomAttributes")) if app else {}
        kr = {
            "id": request.ref,
            "apply_policies": list(request.policies),
            "fields": fields,
            "by_user": request.developer_id,
            "date_created": ar.created_at if _real_time(ar.created_at) else "",
        }
        if ar.catalogue:
            kr["catalogues"] = [{"name": ar.catalogue}]
        extra = {
            "portal": self.name,
            "access_request": ar.raw,
            "plan": plan,
            "products": products if len(products) == len(
                [p for p in request.policies if p.startswith(PRODUCT_PREFIX)]) else None,
            "app": app,
        }
        return FactContext(request=kr, developer=developer, policies=policies,
                           catalogue=None, billing=billing, extra=extra)

    def _user_fields(self, user_id: str, user: dict) -> dict:
        from approver.portal.client import custom_attributes

        if user.get("CustomAttributes") is not None:
            return custom_attributes(user["CustomAttributes"])
        return self.portal.get_user_custom_attributes(user_id)

    def _record(self, policy_id: str) -> dict:
        """The product or plan a policy id names; NotFound for neither."""
        from approver.tyk import NotFound

        if policy_id.startswith(PRODUCT_PREFIX):
            return self.portal.get_product(policy_id[len(PRODUCT_PREFIX):])
        if policy_id.startswith(PLAN_PREFIX):
            return self.portal.get_plan(policy_id[len(PLAN_PREFIX):])
        raise NotFound(f"not a new-portal policy id: {policy_id[:40]}")

    def approve(self, request) -> Applied:
        done = self.portal.approve_access_request(request.id)
        # The access request is the handle on its credentials: deleting it revokes them
        # (Tyk CONTRACT §4), so its id is the key id kept for billing revocation.
        approved = done.status == "approved"
        return Applied(done.already_processed, (request.id,) if approved else ())

    def deny(self, request, reason: str) -> Applied:
        # The reject call takes no reason (Tyk CONTRACT §4); ours is in the decision log.
        return Applied(already_processed=self.portal.reject_access_request(
            request.id).already_processed)

    def pending_ids(self) -> list[str]:
        return [r.id for r in self.portal.list_access_requests(status="pending")]

    def revoke(self, developer_id: str, key_id: str) -> bool:
        return self.portal.delete_access_request(key_id)

    def policy_tags(self, policy_id: str) -> set[str]:
        from approver.tyk import NotFound

        try:
            return set(_policy(policy_id, self._record(policy_id))["tags"])
        except NotFound:
            return set()

    def developer_id_by_email(self, email: str) -> str | None:
        # The admin API documents no email filter on GET /users (Tyk CONTRACT §4), and
        # walking every user per billing event would not scale: identify portal
        # developers by id in billing events.
        return None

    def ping(self) -> None:
        self.portal.ping()


def _real_time(value: str) -> bool:
    # Go's zero time (the documented AccessRequestCreated sample) is no creation date.
    return bool(value) and not value.startswith("0001-01-01")


def _developer(user_id: str, user: dict, fields: dict) -> dict:
    """A portal user in the shape of a classic developer record."""
    active = user.get("Active")
    return {
        "id": user_id,
        "email": user.get("Email") or "",
        "fields": fields,
        "date_created": user.get("CreatedAt") or "",
        "inactive": (not active) if isinstance(active, bool) else None,
        "org_id": str(user.get("OrganisationID") or ""),
    }


def _policy(policy_id: str, record: dict) -> dict:
    """A product or plan in the shape of a classic policy: {"id", "name", "tags"}.

    Products: their `Tags`. Plans: `plan`, plus the comma-separated `tags` of their
    `MetaData` (the plan record has no tags of its own).
    """
    if policy_id.startswith(PLAN_PREFIX):
        meta = record.get("MetaData") if isinstance(record.get("MetaData"), dict) else {}
        tags = [PLAN_TAG] + [t.strip() for t in str(meta.get("tags") or "").split(",")
                             if t.strip()]
    else:
        raw = record.get("Tags")
        tags = [str(t.get("Name") if isinstance(t, dict) else t) for t in raw or []
                if t] if isinstance(raw, list) else []
    name = record.get("DisplayName") or record.get("Name") or ""
    return {"id": policy_id, "name": str(name), "tags": sorted(set(tags))}


class PortalRequest:
    """A new-portal access request as the pipeline sees it."""

    def __init__(self, access_request, native_id: str, plan_id: str,
                 product_ids: tuple[str, ...]):
        self.portal = access_request
        self.id = native_id
        self.ref = ref("portal", native_id)
        self.developer_id = access_request.user_id
        self.policies = tuple([PRODUCT_PREFIX + p for p in product_ids]
                              + ([PLAN_PREFIX + plan_id] if plan_id else []))
        self.raw = access_request.raw

    @property
    def pending(self) -> bool:
        return self.portal.pending

    @property
    def approved(self) -> bool:
        return self.portal.status == "approved"


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
