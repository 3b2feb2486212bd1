"""A simulated Tyk Developer Portal admin API (`/portal-api`, Tyk CONTRACT §4) and its webhook.

It shares the sandbox Dashboard's machinery (`harness.Harness`: faults, call log, webhook
target; `app.instrument`: the secret check, fault injection and error answers;
`server.serve`; the `/_sandbox/` control calls), and adds its own data and
`POST /_sandbox/access-requests`, which makes an access request as a developer would and
fires the `AccessRequestCreated` webhook with the configured custom headers.

Over 300 lines: one simulated API (its data, routes and webhook) kept whole, as Tyk's is.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import secrets
import sys
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.serving import make_server

from approver.sandbox import control, webhook
from approver.sandbox import responses as base
from approver.sandbox.app import instrument
from approver.sandbox.harness import Harness
from approver.sandbox.shapes import Shapes
from approver.sandbox.state import SandboxError, now_rfc3339

PER_PAGE = 20
CREATED = "AccessRequestCreated"
# Go's zero time: the documented AccessRequestCreated sample (Tyk CONTRACT §4).
ZERO_TIME = "0001-01-01T00:00:00Z"
USER_AGENT = "Tyk-Portal"


def load_seed(seed: str | Path | dict | None) -> dict:
    """The seed: the packaged portal-seed.json for None, else a JSON file path or a dict."""
    if seed is None:
        text = resources.files("approver.sandbox").joinpath("portal-seed.json").read_text()
        return json.loads(text)
    if isinstance(seed, dict):
        return copy.deepcopy(seed)
    return json.loads(Path(seed).read_text("utf-8"))


def _portal_time(seconds: bool = False) -> str:
    """Now as the portal's records print it: `2023-06-25 13:37` (apps: with seconds)."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


class PortalSandbox(Harness):
    """The simulated portal's data and the rules it applies; every public method is thread-safe.

    Its answers take the recorded shapes (`shapes`): records name the user (`User#<id>`),
    plan, products and app (`Client`), and carry none of the webhook's ids; apps have no
    custom attributes, users do (`/users/{id}/custom-attributes`). Modes (`set_mode`):
    `products` answers `Products` as one "string" (default) or a "list"; `plans_list`
    answers `GET /plans` "wrapped" in `{"data": […]}` (default, the spec) or as an
    "array"; `status` "shown" (default) or "omitted" answers access requests without
    their `Status` (as one read under its app); `record_delay` hides a new access request
    after its webhook; `page_base` 1 (default, the spec) or 0 says where pages count from,
    and `max_per_page` (0: none) caps the `per_page` honoured; `decide_method` "PUT"
    (default, the spec), "POST" (Tyk's portal-go client since 2024) or "both" says how
    approve and reject are taken (any other method: 405); `credentials` "own" (default:
    each approval issues a credential) or "shared" (portal 1.16+: an approval in an app
    that holds an approved credential reuses it, so two access requests list one
    credential, and deleting either revokes it for both).
    """

    def __init__(self, seed: str | Path | dict | None = None, webhook_url: str | None = None,
                 webhook_headers: dict | None = None):
        super().__init__(webhook_url, webhook_headers)
        self._seed = load_seed(seed)
        self.shapes = Shapes("portal")
        self.products_shape = "string"
        self.plans_list = "wrapped"
        self.status_shown = "shown"
        self.page_base, self.max_per_page = 1, 0
        self.decide_method = "PUT"
        self.revocation = "applied"
        self.credentials_mode = "own"
        self._load()

    def _load(self) -> None:
        data = copy.deepcopy(self._seed)
        self._attributes = {u["ID"]: u.pop("CustomAttributes", {}) for u in data["users"]}
        self._users = {u["ID"]: u for u in data["users"]}
        self._products = {p["ID"]: p for p in data["products"]}
        self._plans = {p["ID"]: p for p in data["plans"]}
        self._organisations = {o["ID"]: o for o in data.get("organisations", [])}
        self._providers = data.get("providers", [])
        self._catalogue = data.get("catalogue", "")
        self._apps: dict[int, dict] = {}
        self._requests: dict[int, dict] = {}
        self._credentials: dict[int, dict] = {}
        self._issued: list[str] = []
        self._next = {"app": 1, "request": 1, "credential": 1}

    def reset(self) -> None:
        """Reseed the data; clear faults, the call log and modes (the webhook target is kept)."""
        with self._lock:
            self._load()
            self._faults.clear()
            self._calls.clear()
            self.shapes.chosen.clear()
            self.products_shape, self.plans_list, self.record_delay = "string", "wrapped", 0.0
            self.status_shown = "shown"
            self.page_base, self.max_per_page = 1, 0
            self.decide_method = "PUT"
            self.revocation = "applied"
            self.credentials_mode = "own"

    def set_mode(self, name: str, value) -> None:
        """Also `products` ("string" or "list"), `plans_list` ("wrapped" or "array"),
        `status` ("shown" or "omitted"), `page_base` (0 or 1), `max_per_page` (an
        integer >= 0, 0 for no cap), `decide_method` ("PUT", "POST" or "both") and
        `revocation` ("applied", or "lost": a deletion answered done that leaves the
        access request and its credentials in place) and `credentials` ("own" or
        "shared")."""
        choices = {"products": ("products_shape", ("string", "list")),
                   "plans_list": ("plans_list", ("wrapped", "array")),
                   "status": ("status_shown", ("shown", "omitted")),
                   "page_base": ("page_base", (0, 1)),
                   "decide_method": ("decide_method", ("PUT", "POST", "both")),
                   "revocation": ("revocation", ("applied", "lost")),
                   "credentials": ("credentials_mode", ("own", "shared"))}
        if name == "max_per_page":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError("max_per_page must be an integer >= 0")
            with self._lock:
                self.max_per_page = value
            return None
        if name not in choices:
            return super().set_mode(name, value)
        attribute, allowed = choices[name]
        if isinstance(value, bool) or value not in allowed:
            raise ValueError(f"{name} must be one of {', '.join(map(str, allowed))}")
        with self._lock:
            setattr(self, attribute, value)

    def modes(self) -> dict:
        with self._lock:
            return {**super().modes(), "products": self.products_shape,
                    "plans_list": self.plans_list, "status": self.status_shown,
                    "page_base": self.page_base, "max_per_page": self.max_per_page,
                    "decide_method": self.decide_method, "revocation": self.revocation,
                    "credentials": self.credentials_mode}

    def _new_id(self, kind: str) -> int:
        value = self._next[kind]
        self._next[kind] += 1
        return value

    # ----- reads ---------------------------------------------------------------------------

    def users(self) -> list[dict]:
        with self._lock:
            return [self._user_view(u) for u in self._users.values()]

    def user(self, id_or_email: int | str) -> dict:
        """One user by id or email, as the admin API answers it; SandboxError 404 if none."""
        with self._lock:
            return self._user_view(self._user(id_or_email))

    def _user_view(self, user: dict) -> dict:
        org = self._organisations.get(user.get("OrganisationID"), {})
        return {"APITokenCreatedAt": "", "JWTToken": "", "ResetPassword": False,
                "Teams": None, "UpdatedAt": user.get("CreatedAt", ""),
                "Organisation": org.get("Name", ""), **copy.deepcopy(user)}

    def user_custom_attributes(self, user_id: int) -> list[dict]:
        """The user's custom attributes as the portal lists them (`Custom-attribute-user-index`)."""
        with self._lock:
            self._user(user_id)
            return [{"ID": n, "Value": value, "CustomAttribute": {
                        "Name": name.replace("-", " ").title(), "Identifier": name,
                        "Type": "String", "Behaviour": "Edit and view"}}
                    for n, (name, value) in enumerate(self._attributes[user_id].items(), 1)]

    def organisation(self, organisation_id: int) -> dict:
        with self._lock:
            org = copy.deepcopy(self._get(self._organisations, organisation_id, "organisation"))
            members = [u for u in self._users.values()
                       if u.get("OrganisationID") == organisation_id]
            team = {"Default": True, "ID": 1, "Name": f"{org['Name']} All users",
                    "Organisation": org["Name"],
                    "Users": [f"User#{u['ID']}" for u in members]}
            org.update(Teams=[team], Users=[
                {**self._user_view(u), "UID": u["Email"], "Teams": [team["Name"]]}
                for u in members])
            return org

    def providers(self) -> list[dict]:
        with self._lock:
            return copy.deepcopy(self._providers)

    def apps(self) -> list[dict]:
        """Every app, newest first (as the recorded list)."""
        with self._lock:
            return copy.deepcopy(sorted(self._apps.values(), key=lambda a: -a["ID"]))

    def app_access_requests(self, app_id: int) -> list[dict]:
        """The access requests of one app, as its list answers them."""
        with self._lock:
            self._get(self._apps, app_id, "application")
            return [self._view(r) for r in self._requests.values()
                    if r["AppID"] == app_id and self.readable(r["ID"])]

    def app_access_request(self, app_id: int, request_id: int) -> dict:
        with self._lock:
            req = self._get(self._requests, request_id, "access request")
            if req["AppID"] != app_id or not self.readable(request_id):
                raise SandboxError(404, "access request not found")
            return self._view(req)

    def app_access_request_credentials(self, app_id: int, request_id: int) -> list[dict]:
        """The credentials of one access request of an app (`Credential-index`)."""
        return self.app_access_request(app_id, request_id)["Credentials"]

    def products(self) -> list[dict]:
        with self._lock:
            return copy.deepcopy(list(self._products.values()))

    def product(self, product_id: int) -> dict:
        with self._lock:
            return copy.deepcopy(self._get(self._products, product_id, "product"))

    def plans(self) -> list[dict]:
        with self._lock:
            return copy.deepcopy(list(self._plans.values()))

    def plan(self, plan_id: int) -> dict:
        with self._lock:
            return copy.deepcopy(self._get(self._plans, plan_id, "plan"))

    def access_requests(self, status: str | None = None) -> list[dict]:
        """Every readable access request as the list answers it, optionally of one status."""
        with self._lock:
            return [self._view(r) for r in self._requests.values()
                    if (status is None or r["Status"] == status) and self.readable(r["ID"])]

    def access_request(self, request_id: int) -> dict:
        """One access request as GET answers it; SandboxError 404 if none (or not yet)."""
        with self._lock:
            req = self._get(self._requests, request_id, "access request")
            if not self.readable(request_id):
                raise SandboxError(404, "access request not found")
            return self._view(req)

    def get_access_request(self, request_id: int | str) -> dict | None:
        """One access request, or None."""
        try:
            return self.access_request(int(request_id))
        except (SandboxError, ValueError):
            return None

    def credentials(self) -> list[dict]:
        """Every credential issued, revoked ones included (`active: false`)."""
        with self._lock:
            return copy.deepcopy(list(self._credentials.values()))

    def issued_secrets(self) -> list[str]:
        """The credentials this sandbox has issued (for leak tests)."""
        with self._lock:
            return list(self._issued)

    # ----- writes --------------------------------------------------------------------------

    def create_access_request(
        self,
        user: int | str,
        products: list,
        plan: int | str,
        app: int | None = None,
        announce_id: bool = True,
    ) -> dict:
        """Ask for `products` on `plan` as `user` (id or email), from `app` or a new app.

        Fires `AccessRequestCreated`; with `announce_id=False` its Message has ID 0, as in
        the documented sample (the event fired before the record was saved).
        """
        if not isinstance(products, list) or not products:
            raise SandboxError(400, "products must be a non-empty list of product ids or names")
        with self._lock:
            owner = self._user(user)
            product_ids = [self._named(self._products, p, "product")["ID"] for p in products]
            plan_id = self._named(self._plans, plan, "plan")["ID"]
            if app is None:
                app_id = self._new_id("app")
                self._apps[app_id] = {
                    "ID": app_id, "Name": f"{owner['First'] or 'Dev'}'s app {app_id}",
                    "Description": "", "RedirectURLs": "", "UserID": owner["ID"],
                    "CreatedAt": _portal_time(seconds=True),
                }
            else:
                app_id = self._get(self._apps, app, "application")["ID"]
            request_id = self._new_id("request")
            self._requests[request_id] = {
                "ID": request_id, "Status": "pending", "AppID": app_id, "ByUser": owner["ID"],
                "PlanID": plan_id, "ProductIDs": product_ids, "CreatedAt": _portal_time(),
                "UpdatedAt": _portal_time(), "Credentials": [],
            }
            self.created(request_id)
            view = self._view(self._requests[request_id])
            url, headers = self._webhook_url, dict(self._webhook_headers)
        if url:
            message = {"ID": request_id if announce_id else 0, "AppID": app_id,
                       "ByUser": owner["ID"], "Status": "pending", "ProductIDs": product_ids,
                       "PlanID": plan_id, "CreatedAt": now_rfc3339() if announce_id else ZERO_TIME}
            document = self.shapes.render("webhook AccessRequestCreated", {
                "Event": CREATED, "Message": message, "Timestamp": now_rfc3339()})
            webhook.send(url, document, {"User-Agent": USER_AGENT, **headers})
        return view

    def approve_access_request(self, request_id: int) -> dict:
        """Approve a pending request and issue its credential; 422 if it is not pending."""
        with self._lock:
            req = self._pending_or_422(request_id, "approve")
            held = [c for r in self._requests.values() if r["AppID"] == req["AppID"]
                    and r["Status"] == "approved" for c in r["Credentials"]]
            if self.credentials_mode == "shared" and held:
                # Portal 1.16+: the app's credential serves this request's products too.
                req["Credentials"].append(held[0])
                req["Status"], req["UpdatedAt"] = "approved", _portal_time()
                return {"status": "ok", "message": "Access request approved"}
            credential_id = self._new_id("credential")
            # A Tyk key as the recorded credential shows it: base64 of {"org","id","h"}.
            key = base64.b64encode(json.dumps({
                "org": "6170" + secrets.token_hex(10), "id": secrets.token_hex(16),
                "h": "murmur64"}, separators=(",", ":")).encode()).decode()
            self._issued.append(key)
            self._credentials[credential_id] = {
                "ID": credential_id, "AccessRequestID": request_id, "Credential": key,
                "CredentialHash": hashlib.sha256(key.encode()).hexdigest()[:16],
                "Expires": "", "active": True,
            }
            req["Credentials"].append(credential_id)
            req["Status"], req["UpdatedAt"] = "approved", _portal_time()
            return {"status": "ok", "message": "Access request approved"}

    def reject_access_request(self, request_id: int) -> dict:
        """Reject a pending request; 422 if it is not pending."""
        with self._lock:
            req = self._pending_or_422(request_id, "reject")
            req["Status"], req["UpdatedAt"] = "rejected", _portal_time()
            return {"status": "ok", "message": "Access request rejected"}

    def delete_access_request(self, request_id: int) -> None:
        """Delete a request, revoking its credentials (Tyk CONTRACT §4); 404 if none."""
        with self._lock:
            req = self._get(self._requests, request_id, "access request")
            if self.revocation == "lost":
                return  # answered done; the request and its credentials stay
            for credential_id in req["Credentials"]:
                self._credentials[credential_id]["active"] = False
            del self._requests[request_id]

    # ----- helpers (call with the lock held) ----------------------------------------------

    @staticmethod
    def _get(table: dict, key: Any, what: str) -> dict:
        if isinstance(key, bool) or not isinstance(key, int) or key not in table:
            raise SandboxError(404, f"{what} not found")
        return table[key]

    def _user(self, id_or_email: int | str) -> dict:
        if isinstance(id_or_email, str) and not id_or_email.isdigit():
            wanted = id_or_email.strip().lower()
            found = next((u for u in self._users.values() if u["Email"].lower() == wanted), None)
            if found is None:
                raise SandboxError(404, f"no user with email {id_or_email!r}")
            return found
        return self._get(self._users, int(id_or_email), "user")

    def _named(self, table: dict, key: int | str, what: str) -> dict:
        if isinstance(key, str) and not key.isdigit():
            found = next((r for r in table.values() if key in (r["Name"], r["DisplayName"])),
                         None)
            if found is None:
                raise SandboxError(404, f"no {what} named {key!r}")
            return found
        return self._get(table, int(key), what)

    def _pending_or_422(self, request_id: int, verb: str) -> dict:
        req = self._get(self._requests, request_id, "access request")
        if req["Status"] != "pending":
            # Tyk CONTRACT §4: 422 with a StatusWithMessage; the wording is ours.
            raise SandboxError(422, f"cannot {verb}: access request is {req['Status']}")
        return req

    def _view(self, req: dict) -> dict:
        """An access request as the admin API answers it: names, not ids."""
        products = [self._products.get(p, {}) for p in req["ProductIDs"]]
        names = [p.get("Name", "") for p in products]
        plan = self._plans.get(req["PlanID"], {})
        view = {
            "AuthType": products[0].get("AuthType", "") if products else "",
            "Catalogue": self._catalogue,
            "Client": self._apps.get(req["AppID"], {}).get("Name", ""),
            "CreatedAt": req["CreatedAt"],
            "Credentials": [self._credential_view(c, req["ID"]) for c in req["Credentials"]],
            "DCREnabled": False, "DeletedAt": "", "ID": req["ID"],
            "Plan": plan.get("Name", ""),
            # One string (several names joined by ", ": the recordings show one) or a list.
            "Products": names if self.products_shape == "list" else ", ".join(names),
            "PolicyService": [],
            "ProvisionImmediately": bool(plan.get("AutoApproveAccessRequests")),
            "Status": req["Status"], "UpdatedAt": req["UpdatedAt"],
            "User": f"User#{req['ByUser']}",
        }
        if self.status_shown == "omitted":
            del view["Status"]
        return view

    def _credential_view(self, credential_id: int, request_id: int) -> dict:
        credential = self._credentials[credential_id]
        return {"AccessRequest": f"AccessRequest#{request_id}", "ID": credential_id,
                "Credential": credential["Credential"],
                "CredentialHash": credential["CredentialHash"], "Expires": credential["Expires"]}


# ----- the admin API -----------------------------------------------------------------------

api = Blueprint("portal_api", __name__, url_prefix="/portal-api")


def _int_arg(name: str, default: int) -> int:
    try:
        return int(request.args.get(name, default))
    except ValueError:
        return default


def _paged(items: list) -> list:
    """One page: `page` (from 1, or 0 in `page_base` 0; the first when omitted),
    `per_page` (default 20, capped by `max_per_page`); `limit` caps the rows only."""
    state = base.sandbox()
    page = _int_arg("page", state.page_base)
    per_page = max(_int_arg("per_page", PER_PAGE), 1)
    if state.max_per_page:
        per_page = min(per_page, state.max_per_page)
    start = max(page - state.page_base, 0) * per_page
    rows = items[start: start + per_page]
    limit = _int_arg("limit", per_page)
    return rows[: max(limit, 0)]


def _render(route: str, record) -> Response:
    return jsonify(base.sandbox().shapes.render(route, record))


# GET /access_requests{,/id} answer `AccessRequest-index-elem` (the spec), the element of
# the app's recorded access-request list.
_AR_LIST = "GET /portal-api/apps/{id}/access-requests"


@api.get("/access_requests")
def list_access_requests() -> Response:
    return _render(_AR_LIST, _paged(base.sandbox().access_requests()))


@api.get("/access_requests/<int:request_id>")
def get_access_request(request_id: int) -> Response:
    shapes = base.sandbox().shapes
    return jsonify(shapes.render(_AR_LIST, [base.sandbox().access_request(request_id)])[0])


@api.delete("/access_requests/<int:request_id>")
def delete_access_request(request_id: int) -> Response:
    base.sandbox().delete_access_request(request_id)
    return jsonify({"status": "ok"})


def _decide_method_taken() -> None:
    """405 unless this portal takes approve and reject by this method (`decide_method`)."""
    taken = base.sandbox().decide_method
    allowed = ["PUT", "POST"] if taken == "both" else [taken]
    if request.method not in allowed:
        raise MethodNotAllowed(valid_methods=allowed)


@api.route("/access_requests/<int:request_id>/approve", methods=["PUT", "POST"])
def approve_access_request(request_id: int) -> Response:
    _decide_method_taken()
    return jsonify(base.sandbox().approve_access_request(request_id))


@api.route("/access_requests/<int:request_id>/reject", methods=["PUT", "POST"])
def reject_access_request(request_id: int) -> Response:
    _decide_method_taken()
    return jsonify(base.sandbox().reject_access_request(request_id))


@api.get("/apps")
def list_apps() -> Response:
    return _render("GET /portal-api/apps", _paged(base.sandbox().apps()))


@api.get("/apps/<int:app_id>/access-requests")
def list_app_access_requests(app_id: int) -> Response:
    return _render(_AR_LIST, _paged(base.sandbox().app_access_requests(app_id)))


@api.get("/apps/<int:app_id>/access-requests/<int:request_id>")
def get_app_access_request(app_id: int, request_id: int) -> Response:
    return _render("GET /portal-api/apps/{id}/access-requests/{id}",
                   base.sandbox().app_access_request(app_id, request_id))


@api.get("/apps/<int:app_id>/access-requests/<int:request_id>/credentials")
def list_app_access_request_credentials(app_id: int, request_id: int) -> Response:
    return jsonify(_paged(base.sandbox().app_access_request_credentials(app_id, request_id)))


@api.get("/users")
def list_users() -> Response:
    return jsonify(_paged(base.sandbox().users()))


@api.get("/users/<int:user_id>")
def get_user(user_id: int) -> Response:
    return _render("GET /portal-api/users/{id}", base.sandbox().user(user_id))


@api.get("/users/<int:user_id>/custom-attributes")
def get_user_custom_attributes(user_id: int) -> Response:
    return jsonify(_paged(base.sandbox().user_custom_attributes(user_id)))


@api.get("/organisations/<int:organisation_id>")
def get_organisation(organisation_id: int) -> Response:
    return _render("GET /portal-api/organisations/{id}",
                   base.sandbox().organisation(organisation_id))


@api.get("/providers")
def list_providers() -> Response:
    return _render("GET /portal-api/providers", _paged(base.sandbox().providers()))


@api.get("/products")
def list_products() -> Response:
    return jsonify(_paged(base.sandbox().products()))


@api.get("/products/<int:product_id>")
def get_product(product_id: int) -> Response:
    return _render("GET /portal-api/products/{id}", base.sandbox().product(product_id))


@api.get("/plans")
def list_plans() -> Response:
    # The spec's Plan-index wraps the list (`{"data": [...]}`); tyk-demo reads a bare array.
    plans = _paged(base.sandbox().plans())
    return jsonify({"data": plans} if base.sandbox().plans_list == "wrapped" else plans)


@api.get("/plans/<int:plan_id>")
def get_plan(plan_id: int) -> Response:
    return jsonify(base.sandbox().plan(plan_id))


# ----- its own control call -----------------------------------------------------------------

control_portal = Blueprint("control_portal", __name__, url_prefix="/_sandbox")


@control_portal.post("/access-requests")
def create_access_request() -> tuple[Response, int]:
    """Ask for access as a developer: `{"user","products","plan","app","announce_id"}`."""
    body = control._body()
    user = body.get("user")
    if isinstance(user, bool) or not isinstance(user, int | str) or user == "":
        raise SandboxError(400, "user must be a user id or email")
    plan = body.get("plan")
    if isinstance(plan, bool) or not isinstance(plan, int | str) or plan == "":
        raise SandboxError(400, "plan must be a plan id or name")
    app = body.get("app")
    if app is not None and (isinstance(app, bool) or not isinstance(app, int)):
        raise SandboxError(400, "app must be an app id")
    created = base.sandbox().create_access_request(
        user, body.get("products"), plan, app=app,
        announce_id=body.get("announce_id", True) is not False,
    )
    return jsonify(created), 201


def error(status: int, message: str) -> Response:
    """The portal's error bodies: `{"status","message"}` for 422, else `{"errors": [...]}`.

    A path no route answers gets Go's plain-text 404 (recorded `ERR-404-page-not-found`).
    """
    if status == 404 and request.url_rule is None:
        response = Response("404 page not found\n", status=404,
                            content_type="text/plain; charset=utf-8")
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response
    body = ({"status": "error", "message": message} if status == 422
            else {"errors": [message]})
    response = jsonify(body)
    response.status_code = status
    return response


def _no_store(response: Response) -> Response:
    """The headers every recorded portal answer carries."""
    if request.path.startswith(api.url_prefix):
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
    return response


def create_portal_app(secret: str, seed: str | Path | dict | None = None,
                      webhook_url: str | None = None,
                      webhook_headers: dict | None = None) -> Flask:
    """A sandbox Developer Portal answering to `Authorization: <secret>`, seeded from `seed`."""
    if not secret:
        raise ValueError("the sandbox portal needs a non-empty admin token")
    app = Flask(__name__)
    instrument(app, PortalSandbox(seed, webhook_url, webhook_headers), secret, error)
    app.after_request(_no_store)
    app.register_blueprint(api)
    app.register_blueprint(control.bp)
    app.register_blueprint(control_portal)
    return app


def run(host: str = "127.0.0.1", port: int = 3001, secret: str = "",
        seed: str | Path | dict | None = None, webhook_url: str | None = None,
        webhook_headers: dict | None = None) -> None:
    """Serve a sandbox Developer Portal in the foreground until interrupted."""
    app = create_portal_app(secret, seed, webhook_url, webhook_headers)
    server = make_server(host, port, app, threaded=True)
    print(f"sandbox Tyk Developer Portal on http://{host}:{server.server_port}/portal-api",
          file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
