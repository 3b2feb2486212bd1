"""The classic-portal facts, computed from a `FactContext` (Tyk JSON as the Dashboard gives it).

Over 300 lines: some twenty facts of a few lines each, kept beside the Tyk shapes they read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from approver.rules.registry import builtin_fact
from approver.rules.values import UNKNOWN, FactUnavailable, parse_datetime


@dataclass
class FactContext:
    """Everything facts are computed from; every part but `request` may be missing."""

    request: dict
    developer: dict | None = None
    policies: dict[str, dict] = field(default_factory=dict)
    catalogue: dict | None = None
    billing: dict | None = None
    extra: dict = field(default_factory=dict)


def normalise_email_domain(email: Any) -> str:
    """The domain of an email address: lowercase, no trailing dot, IDNA in ASCII (punycode)."""
    if not isinstance(email, str) or "@" not in email:
        raise FactUnavailable("email address has no domain")
    domain = email.rsplit("@", 1)[1].strip().rstrip(".").lower()
    if not domain:
        raise FactUnavailable("email address has no domain")
    try:
        # The stdlib IDNA codec (2003 rules) is enough to compare domains; per label so an
        # already-punycode label passes through unchanged.
        return ".".join(label.encode("idna").decode("ascii") for label in domain.split("."))
    except UnicodeError as exc:
        raise FactUnavailable(f"email domain {domain!r} is not a valid IDNA name: {exc}") from None


def _developer(ctx: FactContext) -> dict:
    # The key request embeds the developer (`portal_developer`); a fetched record wins.
    dev = ctx.developer if ctx.developer is not None else ctx.request.get("portal_developer")
    if not isinstance(dev, dict) or not dev:
        raise FactUnavailable("no developer record")
    return dev


def _get(data: dict, *keys: str) -> Any:
    for key in keys:
        value = data.get(key)
        if value is not None and value != "":
            return value
    return UNKNOWN


def _datetime(value: Any, what: str) -> Any:
    if value is UNKNOWN:
        raise FactUnavailable(f"no {what}")
    parsed = parse_datetime(value)
    if parsed is None:
        raise FactUnavailable(f"{what} {value!r} is not an ISO 8601 date/time")
    return parsed


def _field(data: dict, name: str, whose: str) -> Any:
    fields = data.get("fields")
    if not isinstance(fields, dict) or name not in fields or fields[name] is None:
        raise FactUnavailable(f"{whose} has no field {name!r}")
    return fields[name]


@builtin_fact("request.id", type="text", description="key request id")
def request_id(ctx: FactContext) -> Any:
    """Key request id."""
    return _get(ctx.request, "id", "_id")


@builtin_fact(
    "request.policies",
    type="list of text",
    description="requested policy ids (`apply_policies`, else `[for_plan]`)",
)
def request_policies(ctx: FactContext) -> Any:
    """Requested policy ids."""
    # CONTRACT.md §3.1: `for_plan` is deprecated but still the only field on v1-era requests.
    applied = ctx.request.get("apply_policies")
    if isinstance(applied, list) and applied:
        return [str(p) for p in applied]
    plan = ctx.request.get("for_plan")
    if plan:
        return [str(plan)]
    raise FactUnavailable("key request names no policy")


def _field_names(data: dict | None) -> list[str]:
    fields = data.get("fields") if isinstance(data, dict) else None
    return [str(name) for name in fields] if isinstance(fields, dict) else []


# CONTRACT.md §3.1 (`fields`: "a map from string to string") and §3.2 (sign-up fields).
FIELDS_HINT = "Tyk sends form and sign-up fields as text"


@builtin_fact(
    "request.fields.*",
    type="text",
    description="an answer on the key-request form (`fields.<name>`)",
    hint=FIELDS_HINT,
    names=lambda ctx: _field_names(ctx.request),
)
def request_field(ctx: FactContext, name: str) -> Any:
    """An answer on the key-request form."""
    return _field(ctx.request, name, "key request")


@builtin_fact(
    "request.catalogue",
    type="list of text",
    description="names of the catalogue entries for the requested policies",
)
def request_catalogue(ctx: FactContext) -> Any:
    """Names of the catalogue entries for the requested policies."""
    entries: list[dict] = []
    if isinstance(ctx.request.get("catalogues"), list):
        entries += [e for e in ctx.request["catalogues"] if isinstance(e, dict)]
    if isinstance(ctx.request.get("catalogue_entry"), dict):
        entries.append(ctx.request["catalogue_entry"])
    if not entries and isinstance(ctx.catalogue, dict):
        policies = set(request_policies(ctx))
        apis = ctx.catalogue.get("apis") or []
        entries = [e for e in apis if isinstance(e, dict) and e.get("policy_id") in policies]
    if not entries:
        raise FactUnavailable("no catalogue entry for the requested policies")
    names: list[str] = []
    for entry in entries:
        name = entry.get("name")
        if name and name not in names:
            names.append(str(name))
    return names


@builtin_fact(
    "request.created_at",
    type="time",
    description="when the key request was made",
)
def request_created_at(ctx: FactContext) -> Any:
    """When the key request was made."""
    return _datetime(_get(ctx.request, "date_created"), "key request date")


@builtin_fact("developer.id", type="text", description="developer id")
def developer_id(ctx: FactContext) -> Any:
    """Developer id."""
    try:
        dev = _developer(ctx)
    except FactUnavailable:
        return _get(ctx.request, "by_user")
    return _get(dev, "id", "_id")


@builtin_fact("developer.email", type="text", description="developer email address")
def developer_email(ctx: FactContext) -> Any:
    """Developer email address."""
    return _get(_developer(ctx), "email")


@builtin_fact(
    "developer.email_domain",
    type="text",
    description="domain of the developer's email: lowercase, no trailing dot, IDNA as punycode",
)
def developer_email_domain(ctx: FactContext) -> Any:
    """Domain of the developer's email, normalised."""
    return normalise_email_domain(known_email(ctx))


def known_email(ctx: FactContext) -> str:
    """The developer's email address; FactUnavailable if there is none."""
    email = developer_email(ctx)
    if email is UNKNOWN:
        raise FactUnavailable("developer has no email address")
    return email


@builtin_fact(
    "developer.fields.*",
    type="text",
    description="a developer sign-up field (`fields.<name>`)",
    hint=FIELDS_HINT,
    names=lambda ctx: _field_names(_developer(ctx)),
)
def developer_field(ctx: FactContext, name: str) -> Any:
    """A developer sign-up field."""
    return _field(_developer(ctx), name, "developer")


@builtin_fact(
    "developer.created_at",
    type="time",
    description="when the developer signed up",
)
def developer_created_at(ctx: FactContext) -> Any:
    """When the developer signed up."""
    return _datetime(_get(_developer(ctx), "date_created"), "developer sign-up date")


@builtin_fact(
    "developer.inactive",
    type="boolean",
    description="the developer is marked inactive (often: not yet verified)",
)
def developer_inactive(ctx: FactContext) -> Any:
    """The developer is marked inactive."""
    value = _developer(ctx).get("inactive")
    return value if isinstance(value, bool) else UNKNOWN  # "false" is not False: unknown


def _developer_keys(ctx: FactContext) -> dict:
    dev = _developer(ctx)
    keys = dev.get("keys")
    if keys is None and "api_keys" in dev:
        # CONTRACT.md §3.2: `keys` maps key → policy ids; older `api_keys` maps API → key id.
        raise FactUnavailable("the developer record has api_keys (API → key id), not keys")
    if keys is None:
        return {}
    if not isinstance(keys, dict):
        raise FactUnavailable("developer keys are not a mapping")
    return keys


@builtin_fact(
    "developer.key_count",
    type="number",
    description="how many keys the developer holds",
)
def developer_key_count(ctx: FactContext) -> Any:
    """How many keys the developer holds."""
    return len(_developer_keys(ctx))


@builtin_fact(
    "developer.policies",
    type="list of text",
    description="policy ids across the developer's keys (sorted, unique)",
)
def developer_policies(ctx: FactContext) -> Any:
    """Policy ids across the developer's keys."""
    ids: set[str] = set()
    for policies in _developer_keys(ctx).values():
        if isinstance(policies, list):
            ids.update(str(p) for p in policies)
        elif policies:
            ids.add(str(policies))
    return sorted(ids)


def _requested_policies(ctx: FactContext) -> list[dict]:
    found = []
    for pid in request_policies(ctx):
        policy = ctx.policies.get(pid)
        if not isinstance(policy, dict):
            raise FactUnavailable(f"policy {pid} was not fetched")
        found.append(policy)
    return found


@builtin_fact(
    "policy.names",
    type="list of text",
    description="names of the requested policies",
)
def policy_names(ctx: FactContext) -> Any:
    """Names of the requested policies."""
    return [str(p.get("name", "")) for p in _requested_policies(ctx)]


@builtin_fact(
    "policy.tags",
    type="list of text",
    description="tags of the requested policies (sorted, unique)",
)
def policy_tags(ctx: FactContext) -> Any:
    """Tags of the requested policies."""
    tags: set[str] = set()
    for policy in _requested_policies(ctx):
        tags.update(str(t) for t in policy.get("tags") or [])
    return sorted(tags)


def _billing(ctx: FactContext, key: str) -> Any:
    if not isinstance(ctx.billing, dict):
        raise FactUnavailable("no billing state")
    value = ctx.billing.get(key)
    if value is None or value == "":
        raise FactUnavailable(f"billing state has no {key}")
    return value


@builtin_fact(
    "billing.status",
    type="text",
    description="billing status: trialing, active, past_due or canceled",
)
def billing_status(ctx: FactContext) -> Any:
    """Billing status."""
    return _billing(ctx, "status")


@builtin_fact("billing.plan", type="text", description="billing plan")
def billing_plan(ctx: FactContext) -> Any:
    """Billing plan."""
    return _billing(ctx, "plan")


@builtin_fact(
    "billing.updated_at",
    type="time",
    description="when the billing state last changed",
)
def billing_updated_at(ctx: FactContext) -> Any:
    """When the billing state last changed."""
    return _datetime(_billing(ctx, "updated_at"), "billing update time")
