"""The new Developer Portal's adapter: access requests through its admin API.

Facts come from records the portal answers, which name things rather than number them
(Tyk CONTRACT corrections, docs/tyk-compatibility.md): the user is `User#<id>`, the plan
and the products are found by name in `GET /plans` and `GET /products` (every page), and
the user's custom attributes are `developer.fields.*`. Apps have no attributes, so
`request.fields.*` is unknown here. The webhook's numeric ids only break a tie between
records of the same name, and only once the records agree with them.
"""

from __future__ import annotations

import contextlib
import logging
import time

from approver.pipeline.sources import Applied, MalformedId, RevocationFailed, ref
from approver.pipeline.sources.shared import not_shared
from approver.portal.models import int_id
from approver.rules import FactContext
from approver.tyk import NotFound

log = logging.getLogger(__name__)

# New-portal products and plans become "policies" under these prefixes, so that their
# integer ids can never collide with each other or with classic 24-hex policy ids.
PRODUCT_PREFIX = "product-"
PLAN_PREFIX = "plan-"
# Every plan's policy carries this tag (docs/portal.md: the fact mapping).
PLAN_TAG = "plan"
# The policy id of a product or plan no record answers to: its facts stay unknown.
UNRESOLVED = "?"


def hint(message: dict) -> dict:
    """What a webhook's `Message` says of the records: their ids, as strings (never trusted)."""
    products = message.get("ProductIDs")
    return {"app": int_id(message.get("AppID")), "user": int_id(message.get("ByUser")),
            "plan": int_id(message.get("PlanID")),
            "products": [i for i in map(int_id, products[:100]) if i]
            if isinstance(products, list) else []}


class PortalSource:
    """The Tyk (Enterprise) Developer Portal, through its admin API (Tyk CONTRACT §4).

    Its access requests are mapped onto the classic rule vocabulary (docs/portal.md):
    the user is the developer, and the products and the plan are the requested policies,
    with ids `product-<id>` and `plan-<id>`.
    """

    name = "portal"
    takes_hints = True
    # Plans and products change rarely: names are looked up in lists at most this old.
    LIST_TTL = 30.0

    def __init__(self, portal, list_ttl: float | None = None):
        self.portal = portal
        self.list_ttl = self.LIST_TTL if list_ttl is None else list_ttl
        self._lists: dict[str, tuple[float, list[dict]]] = {}

    def fetch(self, native_id: str, hint: dict | None = None):
        if not native_id.isdigit() or not int(native_id):
            raise MalformedId(f"access request ids are positive integers, not {native_id[:40]!r}")
        try:
            access_request = self.portal.get_access_request(native_id)
        except NotFound:
            return None
        plan, products = self._offer(access_request, native_id, hint or {})
        return PortalRequest(access_request, native_id, plan, products)

    def _offer(self, ar, native_id: str, hint: dict) -> tuple[str, tuple[str, ...]]:
        """(plan id, product ids) for the names the record gives; `?<name>` where none fits."""
        agrees = None  # asked once, only if a name is ambiguous

        def pick(kind: str, name: str, hinted: list[str]) -> str:
            nonlocal agrees
            found = self._named(kind, name)
            if len(found) > 1 and set(found) & set(hinted):
                if agrees is None:
                    agrees = self._hint_agrees(ar, native_id, hint)
                if agrees:
                    return next(i for i in found if i in hinted)
            if len(found) == 1:
                return found[0]
            log.warning("access request %s: %d %ss named %r; its facts stay unknown",
                        native_id, len(found), kind, name[:80])
            return UNRESOLVED + name[:80]

        plan = pick("plan", ar.plan_name, [hint.get("plan", "")]) if ar.plan_name \
            else UNRESOLVED
        products = []
        for name in ar.product_names:
            if self._named("product", name) or "," not in name:
                products.append(pick("product", name, hint.get("products", [])))
            else:
                # Several products in one string: the separator is undocumented.
                products += [pick("product", part.strip(), hint.get("products", []))
                             for part in name.split(",") if part.strip()]
        return plan, tuple(products or [UNRESOLVED])

    def _named(self, kind: str, name: str) -> list[str]:
        """Ids of the plans or products with this name (or display name), every page.

        The lists are kept `list_ttl` seconds; a name they lack is looked for in a fresh
        read (a plan or product made since).
        """
        records, fresh = self._list(kind)
        found = _matching(records, name)
        if not found and not fresh:
            found = _matching(self._list(kind, refresh=True)[0], name)
        return found

    def _list(self, kind: str, refresh: bool = False) -> tuple[list[dict], bool]:
        """Every plan or product, and whether they were read just now."""
        now = time.monotonic()
        cached = self._lists.get(kind)
        if not refresh and cached is not None and now - cached[0] < self.list_ttl:
            return cached[1], False
        records = self.portal.list_plans() if kind == "plan" else self.portal.list_products()
        self._lists[kind] = (now, records)
        return records, True

    def _hint_agrees(self, ar, native_id: str, hint: dict) -> bool:
        """Whether the webhook's app holds this request, for this user and plan."""
        if not hint.get("app") or hint.get("user") != ar.user_id:
            return False
        try:
            held = self.portal.list_app_access_requests(hint["app"])
        except Exception:  # any failure: the hint is not confirmed
            log.info("access request %s: the webhook's app could not be read", native_id)
            return False
        if any(r.id == native_id and r.user_id == ar.user_id and r.plan_name == ar.plan_name
               for r in held):
            return True
        log.warning("access request %s: the webhook's ids disagree with the portal's records;"
                    " deciding from the records alone", native_id)
        return False

    def gather(self, request, billing: dict | None) -> FactContext:
        ar = request.portal
        developer = None
        if request.developer_id:
            with contextlib.suppress(NotFound):
                user = self.portal.get_user(request.developer_id)
                fields = self.portal.get_user_custom_attributes(request.developer_id)
                developer = _developer(request.developer_id, user, fields)
        policies, products, plan = {}, [], None
        for policy_id in request.policies:
            # A product or plan deleted since, or never found: its facts are unknown,
            # which fails to review.
            with contextlib.suppress(NotFound):
                record = self._record(policy_id)
                policies[policy_id] = _policy(policy_id, record)
                if policy_id.startswith(PLAN_PREFIX):
                    plan = record
                else:
                    products.append(record)
        # No `fields`: the portal has nothing like the classic key-request form
        # (apps have no custom attributes), so `request.fields.*` is unknown.
        kr = {
            "id": request.ref,
            "apply_policies": list(request.policies),
            "by_user": request.developer_id,
            "date_created": ar.created_at if _real_time(ar.created_at) else "",
        }
        if ar.catalogue:
            kr["catalogues"] = [{"name": ar.catalogue}]
        wanted = [p for p in request.policies if p.startswith(PRODUCT_PREFIX)]
        extra = {
            "portal": self.name,
            "access_request": ar.raw,
            "plan": plan,
            "products": products if len(products) == len(wanted) else None,
            "app": {"Name": ar.app_name} if ar.app_name else None,
        }
        return FactContext(request=kr, developer=developer, policies=policies,
                           catalogue=None, billing=billing, extra=extra)

    def _record(self, policy_id: str) -> dict:
        """The product or plan a policy id names; NotFound for neither."""
        for prefix, read in ((PRODUCT_PREFIX, self.portal.get_product),
                             (PLAN_PREFIX, self.portal.get_plan)):
            if policy_id.startswith(prefix) and policy_id[len(prefix):].isdigit():
                return read(policy_id[len(prefix):])
        raise NotFound(f"not a known new-portal product or plan: {policy_id[:40]}")

    def approve(self, request) -> Applied:
        done = self.portal.approve_access_request(request.id)
        # The access request is the handle on its credentials: deleting it revokes them
        # (Tyk CONTRACT §4), so its id is the key id kept for billing revocation.
        approved = done.status == "approved"
        return Applied(done.already_processed, (request.id,) if approved else ())

    def held(self, request) -> tuple[str, ...]:
        return ()  # an access request's credentials are its own: nothing older to tell apart

    def approved_elsewhere(self, request, held_before: tuple[str, ...]) -> Applied:
        return Applied(True, (request.id,) if request.approved else ())

    def deny(self, request, reason: str, held_before: tuple[str, ...] | None = None) -> Applied:
        # The reject call takes no reason (Tyk CONTRACT §4); ours is in the decision log.
        # One approved meanwhile is refused (422) and found approved on resume.
        return Applied(already_processed=self.portal.reject_access_request(
            request.id).already_processed)

    def pending_ids(self) -> list[str]:
        return [r.id for r in self.portal.list_access_requests(status="pending")]

    def revoke(self, developer_id: str, key_id: str, about: dict | None = None) -> bool:
        try:
            access_request = self.portal.get_access_request(key_id)
        except NotFound:
            return self.portal.delete_access_request(key_id)  # gone already: False
        not_shared(self.portal, access_request, key_id)
        existed = self.portal.delete_access_request(key_id)
        try:  # read back: revoked only once the access request (its credentials) is gone
            self.portal.get_access_request(key_id)
        except NotFound:
            return existed
        raise RevocationFailed(f"access request {key_id} is still there after its deletion")

    def policy_tags(self, policy_id: str) -> set[str]:
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


def _matching(records: list[dict], name: str) -> list[str]:
    """Ids of the records named `name` (`Name` or `DisplayName`)."""
    return [str(r["ID"]) for r in records
            if int_id(r.get("ID")) and name in (r.get("Name"), r.get("DisplayName"))]


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

    def __init__(self, access_request, native_id: str, plan: str, products: tuple[str, ...]):
        self.portal = access_request
        self.id = native_id
        self.ref = ref("portal", native_id)
        self.developer_id = access_request.user_id
        self.policies = tuple([PRODUCT_PREFIX + p for p in products] + [PLAN_PREFIX + plan])
        self.raw = access_request.raw

    @property
    def pending(self) -> bool:
        return self.portal.pending

    @property
    def approved(self) -> bool:
        return self.portal.status == "approved"
