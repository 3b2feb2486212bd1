"""The Tyk Dashboard API subset the approver uses (Tyk CONTRACT §3.1-§3.5).

Answers take the shape of Tyk's recorded answers for the route (`base.render`).
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, jsonify, request

from approver.sandbox import responses as base
from approver.sandbox.state import MALFORMED, SandboxError

bp = Blueprint("dashboard", __name__, url_prefix="/api/portal")
# The Dashboard's liveness endpoint (`health_check_endpoint_name`, default `/hello`).
health = Blueprint("dashboard_health", __name__)


@health.get("/hello")
def hello() -> Response:
    """Liveness; `version` only when the `version` mode sets one (Tyk documents none)."""
    version = base.sandbox().modes()["version"]
    return jsonify({"status": "ok", **({"version": version} if version else {})})


def _page() -> int:
    """The `p` query parameter; anything not an integer reads as page 1."""
    try:
        return int(request.args.get("p", "1"))
    except ValueError:
        return 1


# ----- key requests (Tyk CONTRACT §3.1) ---------------------------------------------------


@bp.get("/requests")
def list_requests() -> Response:
    """List key requests, paged, optionally by `approved=true|false`."""
    approved = {"true": True, "false": False}.get(request.args.get("approved", "").lower())
    return base.render("GET /api/portal/requests",
                       base.sandbox().key_requests_page(approved, _page()))


@bp.get("/requests/<request_id>")
def get_request(request_id: str) -> Response:
    """One key request, bare, with its developer and catalogue entries embedded."""
    return base.render("GET /api/portal/requests/{id}",
                       base.sandbox().read_key_request(request_id))


@bp.post("/requests")
def create_request() -> Response:
    """Store a key request; the answer's Message is the new id."""
    return base.ok(base.sandbox().submit_key_request(_json()))


def _json():
    """The request's JSON body."""
    try:
        return json.loads(request.get_data())
    except ValueError:
        # Tyk CONTRACT §3.0: Tyk answers an undecodable body with 403, not 400.
        raise SandboxError(403, MALFORMED) from None


@bp.put("/requests/approve/<request_id>")
def approve_request(request_id: str) -> Response:
    """Approve a key request and answer the new credentials."""
    answer = base.sandbox().approve_key_request(request_id)
    if "client_id" in answer:  # OAuth: no recorded answer, the documented fields as they are
        return jsonify(answer)
    return base.render("PUT /api/portal/requests/approve/{id}", answer)


@bp.delete("/requests/<request_id>")
def delete_request(request_id: str) -> Response:
    """Delete (decline) a key request."""
    base.sandbox().delete_key_request(request_id)
    return base.ok("Data deleted")


# ----- developers (Tyk CONTRACT §3.2) -----------------------------------------------------


@bp.get("/developers")
def list_developers() -> Response:
    """List developers, paged."""
    return base.render("GET /api/portal/developers",
                       base.sandbox().paginate(base.sandbox().developers(), _page()))


@bp.post("/developers")
def create_developer() -> Response:
    """Add a developer; the answer's Message is the new id."""
    return base.ok(base.sandbox().create_developer(_json()))


@bp.get("/developers/<developer_id>")
def get_developer(developer_id: str) -> Response:
    """One developer, bare."""
    return base.render("GET /api/portal/developers/{id}",
                       base.sandbox().read_developer(developer_id))


@bp.put("/developers/<developer_id>")
def update_developer(developer_id: str) -> Response:
    """Replace a developer record (Tyk has no PATCH semantics, Tyk CONTRACT §3.2)."""
    base.sandbox().update_developer(developer_id, _json())
    return base.ok("Data updated")


@bp.post("/developers/password/<developer_id>")
def set_password(developer_id: str) -> Response:
    """Set a developer's password: `{"password": "…"}` (not kept by the sandbox)."""
    body = _json()
    base.sandbox().read_developer(developer_id)
    if not isinstance(body, dict) or not isinstance(body.get("password"), str) \
            or len(body["password"]) < 6:
        return base.failure(400, "Developer password validation failed.", "no-meta")
    return base.render("POST /api/portal/developers/password/{id}",
                       {"Message": "Password changed"})


@bp.get("/developers/email/<path:email>")
def get_developer_by_email(email: str) -> Response:
    """One developer by (URL-encoded) email, bare."""
    return base.render("GET /api/portal/developers/email/{email}",
                       base.sandbox().read_developer_by_email(email))


@bp.delete("/developers/<developer_id>/keys/<key_id>")
def revoke_developer_key(developer_id: str, key_id: str) -> Response:
    """Revoke one of a developer's keys by the id in its `keys` map (the hash when hashed)."""
    base.sandbox().revoke_developer_key(developer_id, key_id)
    return base.ok("Key deleted successfully.")


@bp.delete("/developers/oauth/<app_id>")
def delete_oauth_client(app_id: str) -> Response:
    """Delete an OAuth client by its client id (the keys endpoint does not know it)."""
    base.sandbox().delete_oauth_client(app_id)
    return base.ok("Data deleted")


# ----- policies, catalogue, configuration (Tyk CONTRACT §3.3-§3.5) ------------------------


@bp.get("/policies")
def list_policies() -> Response:
    """List policies, paged; `active=<anything>` keeps only active ones."""
    # Tyk CONTRACT §3.3: any non-empty value of `active` filters.
    active_only = bool(request.args.get("active"))
    return base.render("GET /api/portal/policies",
                       base.sandbox().paginate(base.sandbox().policies(active_only),
                                               _page()))


@bp.post("/policies")
def create_policy() -> Response:
    """Add a policy; the answer's Message is the new id."""
    return base.ok(base.sandbox().create_policy(_json()))


@bp.get("/policies/<policy_id>")
def get_policy(policy_id: str) -> Response:
    """One policy, bare."""
    return base.render("GET /api/portal/policies/{id}", base.sandbox().read_policy(policy_id))


@bp.get("/catalogue")
def get_catalogue() -> Response:
    """The single catalogue document."""
    return base.render("GET /api/portal/catalogue", base.sandbox().catalogue())


@bp.get("/configuration")
def get_configuration() -> Response:
    """The portal configuration."""
    return jsonify(base.sandbox().configuration())
