"""Facts only the new Tyk Developer Portal has: the plan, products and app of an access request.

Its source (`approver.pipeline.sources.portal.PortalSource`) puts the portal's records in
`FactContext.extra`; a classic-portal key request has none, so these facts are unknown there.
"""

from __future__ import annotations

from typing import Any

from approver.rules.facts import FactContext
from approver.rules.registry import builtin_fact
from approver.rules.values import FactUnavailable


def _record(ctx: FactContext, what: str) -> Any:
    if ctx.extra.get("portal") != "portal":
        raise FactUnavailable(f"not a new-portal access request (no {what})")
    value = ctx.extra.get(what)
    if value is None:
        raise FactUnavailable(f"the access request's {what} could not be read")
    return value


def _name(record: dict, what: str) -> str:
    name = record.get("DisplayName") or record.get("Name")
    if not name:
        raise FactUnavailable(f"the {what} has no name")
    return str(name)


@builtin_fact(
    "portal.plan",
    type="text",
    description="new portal: the access request's plan (display name, else name)",
)
def portal_plan(ctx: FactContext) -> Any:
    """The plan asked for (new portal only)."""
    return _name(_record(ctx, "plan"), "plan")


@builtin_fact(
    "portal.products",
    type="list of text",
    description="new portal: the access request's products (display names, else names)",
)
def portal_products(ctx: FactContext) -> Any:
    """The products asked for (new portal only)."""
    return [_name(p, "product") for p in _record(ctx, "products")]


@builtin_fact(
    "portal.app",
    type="text",
    description="new portal: the name of the developer app the access is for",
)
def portal_app(ctx: FactContext) -> Any:
    """The developer app asking (new portal only)."""
    app = _record(ctx, "app")
    if not app.get("Name"):
        raise FactUnavailable("the app has no name")
    return str(app["Name"])
