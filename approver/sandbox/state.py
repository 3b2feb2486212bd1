"""The sandbox Dashboard's data and the rules Tyk applies to it (no Flask).

Over 300 lines: the simulated Dashboard's records and their rules, kept whole, as Tyk's are.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import re
import secrets
import time
import uuid
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from approver.errors import ApproverError
from approver.sandbox import webhook
from approver.sandbox.harness import Harness
from approver.sandbox.shapes import Shapes
from approver.tyk.permissions import right_for

PAGE_SIZE = 10
# How the sandbox pages lists (`set_mode`): Tyk's page size, where pages count from, and
# whether `Pages` is stated (docs/tyk-compatibility.md, paging).
PAGING = {"page_size": PAGE_SIZE, "page_base": 1, "pages_total": "counted"}
# The Dashboard's own settings (tyk_analytics.conf, not the portal configuration) the
# sandbox models: `hash_keys` (as the Gateway's), `enable_delete_key_by_hash`, and how a
# revocation ends: "applied", or "lost" (answered done while the key stays, as a hybrid
# Gateway restoring a revoked session, liip/wp-tyk-dev-portal#6).
SERVER = {"hash_keys": True, "enable_delete_key_by_hash": True, "revocation": "applied"}
# The sandbox's wording: what Tyk answers a refused delete by hash is unverified.
DELETE_BY_HASH_OFF = "Deleting a key by its hash is disabled (enable_delete_key_by_hash)."

# Tyk CONTRACT §3.0 / §3.1 / §3.3: the messages Tyk puts in its error envelope.
NOT_FOUND = "Could not retrieve portal object."
ALREADY_PROCESSED = "Key request has already been processed."
MALFORMED = "Request body malformed."
KEY_NOT_FOUND = "Could not retrieve key detail."
# The recorded 403 (Tyk CONTRACT §3.0), two spaces and all.
ACCESS_DENIED = "access denied: You do not have permission to access  {path}"
# What the 2015 developer list shows for a password: a bcrypt hash (never a real one here).
BCRYPT_PLACEHOLDER = "$2a$10$" + "." * 53

# Go's zero time.Time: what Tyk stores when a client leaves date_created out
# (Tyk CONTRACT §3.1: "tyk api doesn't set this by itself").
ZERO_TIME = "0001-01-01T00:00:00Z"

_OBJECT_ID = re.compile(r"[0-9a-fA-F]{24}")


class SandboxError(ApproverError):
    """A Dashboard failure: the HTTP status and the message of Tyk's error envelope."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def now_rfc3339() -> str:
    """The current UTC time as RFC 3339 with microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def is_object_id(value: object) -> bool:
    """Whether `value` is a 24-hex Mongo-style id, the shape of every Tyk portal id."""
    return isinstance(value, str) and _OBJECT_ID.fullmatch(value) is not None


_counter = itertools.count(secrets.randbelow(1 << 24))


def new_object_id() -> str:
    """A fresh ObjectId-like id: seconds, 5 random bytes, a counter (so ids sort by creation)."""
    return f"{int(time.time()):08x}{secrets.token_hex(5)}{next(_counter) & 0xFFFFFF:06x}"


def paginate(items: list, page: int, size: int = PAGE_SIZE, base: int = 1,
             total: str = "counted") -> dict:
    """Tyk's list envelope: pages of `size`; any negative p means all.

    `base` 1: pages count from 1 and p=0 reads as 1; `base` 0: they count from 0 (Tyk's
    documented sample asks `p=0`). `total` "counted" states the page count in `Pages`;
    "zero" answers `"Pages": 0` as that sample does.
    """
    # Tyk CONTRACT §3.0: "p=-1 (or any negative number) disables paging".
    if page < 0:
        return {"Data": items, "Pages": 1}
    start = max(page - base, 0) * size
    counted = max(1, math.ceil(len(items) / size))
    return {"Data": items[start : start + size], "Pages": counted if total == "counted" else 0}


def load_seed(seed: str | Path | dict | None) -> dict:
    """The seed data: the packaged seed.json for None, else a JSON file path or a dict."""
    if seed is None:
        text = resources.files("approver.sandbox").joinpath("seed.json").read_text("utf-8")
        return json.loads(text)
    if isinstance(seed, dict):
        return copy.deepcopy(seed)
    return json.loads(Path(seed).read_text("utf-8"))


def policies_of(request: dict) -> list[str]:
    """The policies a key request asks for: apply_policies, else the deprecated for_plan."""
    # Tyk CONTRACT §3.1: v2 requests carry apply_policies; read for_plan only as a fallback.
    return list(
        request.get("apply_policies") or ([request["for_plan"]] if request.get("for_plan") else [])
    )


class Sandbox(Harness):
    """The simulated Dashboard's state; every public method is thread-safe.

    Its answers take the shapes Tyk's recorded answers have (`shapes`, one variant per
    route, switchable). Tyk-faithful modes: `hash_keys` and `enable_delete_key_by_hash`
    (the Dashboard's and Gateway's own settings, not the portal configuration's
    `HashKeys`, which Tyk's samples show false beside hashed key ids), `revocation`,
    `secure_key_approval` in the configuration (keys generated only when the developer
    asks, `generate_key`), `withheld_rights` (calls needing those Dashboard user rights
    get Tyk's 403), and `record_delay` (from the Harness: the webhook fires before the
    record can be read).
    """

    def __init__(self, seed: str | Path | dict | None = None, webhook_url: str | None = None):
        super().__init__(webhook_url)
        self._seed = load_seed(seed)
        self.shapes = Shapes("classic")
        self.withheld_rights: set[str] = set()
        self.paging = dict(PAGING)
        self.server = dict(SERVER)
        self.version = ""
        # Every RawKey, Password and OAuth secret handed out, kept only so that tests can
        # search logs and Redis for them; a real Dashboard shows them once.
        self._issued: list[str] = []
        self._load()

    # ----- loading -------------------------------------------------------------------------

    def _load(self) -> None:
        """Replace all portal data with a fresh copy of the seed."""
        data = copy.deepcopy(self._seed)
        org = data["org_id"]
        self.org_id: str = org
        self._config: dict = {"org_id": org, **data.get("configuration", {})}
        catalogue = data.get("catalogue") or {}
        self._catalogue: dict = {
            "id": catalogue.get("id", ""),
            "org_id": catalogue.get("org_id", org),
            "apis": catalogue.get("apis", []),
            "email": catalogue.get("email", ""),
        }
        self._policies: dict[str, dict] = {}
        for policy in data.get("policies", []):
            # Tyk CONTRACT §3.3: policies carry both `_id` and `id`; the portal-policies
            # page names an access right's API `apiid`/`apiname`, the swagger `api_id`.
            rights = {api: {**right, "apiid": right.get("api_id", api),
                            "apiname": right.get("api_name", "")}
                      for api, right in (policy.get("access_rights") or {}).items()}
            self._policies[policy["id"]] = {
                "_id": policy["id"], "org_id": org, "date_created": ZERO_TIME,
                "last_updated": ZERO_TIME, **policy, "access_rights": rights}
        self._developers: dict[str, dict] = {}
        for dev in data.get("developers", []):
            self._developers[dev["id"]] = self._new_developer(dev)
        self._requests: dict[str, dict] = {}
        for req in data.get("key_requests", []):
            self._requests[req["id"]] = self._new_request(req, req["id"])
        # The key store stands in for the Gateway's sessions: key id -> owner and policies.
        self._keys: dict[str, dict] = {}
        for dev in self._developers.values():
            for key_id, policies in dev["keys"].items():
                self._keys[key_id] = self._key_record(key_id, dev["id"], policies, "authToken")

    def _new_developer(self, dev: dict) -> dict:
        """A complete developer object (Tyk CONTRACT §3.2) from possibly partial data."""
        base = {
            "id": "", "email": "", "date_created": ZERO_TIME, "inactive": False,
            "org_id": self.org_id, "keys": {}, "subscriptions": {}, "fields": {}, "nonce": "",
            "sso_key": "", "oauth_clients": {}, "password_max_days": 0,
            "password_updated": ZERO_TIME, "PWHistory": [], "last_login_date": ZERO_TIME,
        }  # fmt: skip
        return {**base, **dev}

    def _new_request(self, body: dict, request_id: str) -> dict:
        """A complete KeyRequest object (Tyk CONTRACT §3.1) from a create body."""
        policies = list(body.get("apply_policies") or [])
        return {
            "id": request_id,
            "org_id": self.org_id,
            "key": body.get("key") or "",
            "for_api": body.get("for_api") or "",
            # Tyk CONTRACT §3.1: for_plan is deprecated but still returned as the first policy.
            "for_plan": body.get("for_plan") or (policies[0] if policies else ""),
            "apply_policies": policies,
            "remove_policies": list(body.get("remove_policies") or []),
            "by_user": body.get("by_user") or "",
            "fields": dict(body.get("fields") or {}),
            "approved": bool(body.get("approved")),
            "date_created": body.get("date_created") or ZERO_TIME,
            "version": body.get("version") or "v2",
            "jwt_secret": body.get("jwt_secret") or "",
            "certificate": body.get("certificate") or "",
            "oauth_info": {"redirect_uri": "", **(body.get("oauth_info") or {})},
        }

    @staticmethod
    def _key_record(key_id: str, developer_id: str, policies: list, auth_type: str) -> dict:
        """An entry of the key store."""
        return {
            "key_id": key_id,
            "developer_id": developer_id,
            "policies": list(policies),
            "auth_type": auth_type,
            "active": True,
            "date_created": now_rfc3339(),
        }

    def reset(self) -> None:
        """Reseed the portal data and clear faults and the call log (the webhook URL is kept)."""
        with self._lock:
            self._load()
            self._faults.clear()
            self._calls.clear()
            self.withheld_rights.clear()
            self.paging = dict(PAGING)
            self.server = dict(SERVER)
            self.version = ""
            self.shapes.chosen.clear()
            self.record_delay = 0.0

    # ----- reads ---------------------------------------------------------------------------

    def configuration(self) -> dict:
        """The portal configuration object (Tyk CONTRACT §3.5)."""
        with self._lock:
            return copy.deepcopy(self._config)

    def catalogue(self) -> dict:
        """The single catalogue document (Tyk CONTRACT §3.4)."""
        with self._lock:
            return copy.deepcopy(self._catalogue)

    def policies(self, active_only: bool = False) -> list[dict]:
        """All policies, or only the active ones."""
        with self._lock:
            found = [p for p in self._policies.values() if p.get("active") or not active_only]
            return copy.deepcopy(found)

    def read_policy(self, policy_id: str) -> dict:
        """One policy; SandboxError 400 for a malformed id, 404 if unknown."""
        if not is_object_id(policy_id):
            raise SandboxError(400, "Invalid policy ID.")
        with self._lock:
            if policy_id not in self._policies:
                raise SandboxError(404, NOT_FOUND)
            return copy.deepcopy(self._policies[policy_id])

    def developers(self) -> list[dict]:
        """All developers, as the list answers them: with `_id`, and the 2015 list's fields."""
        with self._lock:
            return [self._legacy_view(d) for d in self._developers.values()]

    def _legacy_view(self, dev: dict) -> dict:
        """A developer with the fields older lists carry: `_id`, `api_keys`, `password`."""
        # Tyk CONTRACT §3.2: the 2015 list maps API id -> key id in `api_keys`, and shows
        # the password hash.
        api_keys = {api: key_id for key_id, policies in dev["keys"].items()
                    for policy_id in policies
                    for api in (self._policies.get(policy_id) or {}).get("access_rights", {})}
        return {"_id": dev["id"], **copy.deepcopy(dev), "api_keys": api_keys,
                "password": BCRYPT_PLACEHOLDER}

    def developer(self, id_or_email: str) -> dict | None:
        """One developer by id or email, or None."""
        with self._lock:
            dev = self._find_developer(id_or_email)
            return copy.deepcopy(dev) if dev else None

    def read_developer(self, developer_id: str) -> dict:
        """One developer by id; SandboxError 400 for a malformed id, 404 if unknown."""
        with self._lock:
            return copy.deepcopy(self._developer_or_raise(developer_id))

    def read_developer_by_email(self, email: str) -> dict:
        """One developer by email (case-insensitive); SandboxError 404 if none."""
        with self._lock:
            dev = self._by_email(email)
            if dev is None:
                raise SandboxError(404, NOT_FOUND)
            return self._legacy_view(dev)

    def key_requests(self, approved: bool | None = None) -> list[dict]:
        """All readable key requests in creation order, with embedded objects, by approval."""
        with self._lock:
            return [
                self._request_view(r)
                for r in self._requests.values()
                if (approved is None or r["approved"] is approved) and self.readable(r["id"])
            ]

    def key_requests_page(self, approved: bool | None, page: int) -> dict:
        """One page of `key_requests` in Tyk's list envelope; only that page's requests are
        given their embedded objects (a backlog of thousands stays cheap to page through)."""
        with self._lock:
            found = self.paginate([r for r in self._requests.values()
                                   if (approved is None or r["approved"] is approved)
                                   and self.readable(r["id"])], page)
            return {**found, "Data": [self._request_view(r) for r in found["Data"]]}

    def paginate(self, items: list, page: int) -> dict:
        """One page of `items` in Tyk's list envelope, as the paging modes say."""
        with self._lock:
            return paginate(items, page, self.paging["page_size"], self.paging["page_base"],
                            self.paging["pages_total"])

    def read_key_request(self, request_id: str) -> dict:
        """One key request with embedded objects; SandboxError 400 malformed id, 404 unknown."""
        with self._lock:
            return self._request_view(self._request_or_raise(request_id))

    def get_key_request(self, request_id: str) -> dict | None:
        """One key request as GET returns it, or None."""
        try:
            return self.read_key_request(request_id)
        except SandboxError:
            return None

    def key(self, key_id: str) -> dict | None:
        """A key-store entry (`key_id, developer_id, policies, auth_type, active`), or None."""
        with self._lock:
            record = self._keys.get(key_id)
            return copy.deepcopy(record) if record else None

    def keys(self) -> list[dict]:
        """Every key the sandbox has issued or was seeded with, revoked ones included."""
        with self._lock:
            return copy.deepcopy(list(self._keys.values()))

    # ----- developers and policies --------------------------------------------------------

    def create_developer(self, body: Any) -> str:
        """Add a developer from a `POST /api/portal/developers` body; return its new id."""
        if not isinstance(body, dict) or not isinstance(body.get("email"), str):
            raise SandboxError(403, MALFORMED)
        with self._lock:
            developer_id = new_object_id()
            self._developers[developer_id] = self._new_developer(
                {**_known(body, self._new_developer({})), "id": developer_id,
                 "date_created": body.get("date_created") or now_rfc3339()})
            return developer_id

    def update_developer(self, developer_id: str, body: Any) -> None:
        """Replace a developer with a full record (Tyk CONTRACT §3.2: no PATCH semantics)."""
        if not isinstance(body, dict):
            raise SandboxError(403, MALFORMED)
        with self._lock:
            self._developer_or_raise(developer_id)
            self._developers[developer_id] = self._new_developer(
                {**_known(body, self._new_developer({})), "id": developer_id})

    def create_policy(self, body: Any) -> str:
        """Add a policy from a `POST /api/portal/policies` body; return its new id."""
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            raise SandboxError(403, MALFORMED)
        with self._lock:
            policy_id = new_object_id()
            self._policies[policy_id] = {
                "_id": policy_id, "id": policy_id, "org_id": self.org_id, "active": True,
                "tags": [], "access_rights": {}, "date_created": now_rfc3339(),
                **{k: v for k, v in body.items() if k not in ("_id", "id", "org_id")}}
            return policy_id

    # ----- key requests --------------------------------------------------------------------

    def create_key_request(
        self,
        developer: str,
        policies: list[str],
        fields: dict | None = None,
        approved: bool = False,
    ) -> dict:
        """Submit a key request as the portal form would for `developer` (id or email)."""
        if isinstance(policies, str):
            policies = [policies]
        if not policies or not all(isinstance(p, str) and p for p in policies):
            raise SandboxError(400, "policies must be a non-empty list of policy ids")
        if fields is not None and not isinstance(fields, dict):
            raise SandboxError(400, "fields must be an object")
        with self._lock:
            dev = self._find_developer(developer) if isinstance(developer, str) else None
            if dev is None:
                raise SandboxError(404, f"No developer with id or email {developer!r}.")
            body = {
                "by_user": dev["id"],
                "apply_policies": list(policies),
                "for_plan": policies[0],
                "version": "v2",
                "fields": {str(k): str(v) for k, v in (fields or {}).items()},
                "approved": bool(approved),
                "date_created": now_rfc3339(),
            }
            _, view, url = self._store_request(body)
        self._notify(url, view)
        return view

    def submit_key_request(self, body: Any) -> str:
        """Store a key request from a `POST /api/portal/requests` body; return its new id."""
        _check_request_body(body)
        with self._lock:
            request_id, view, url = self._store_request(body)
        self._notify(url, view)
        return request_id

    def _store_request(self, body: dict) -> tuple[str, dict, str | None]:
        """Save a new request; return its id, its GET view and the webhook URL to notify."""
        # Tyk CONTRACT §3.1: the policy ids are not checked on create (tyk#272), and
        # approved=true on create marks the request processed, with no key issued.
        request_id = new_object_id()
        self._requests[request_id] = self._new_request(body, request_id)
        self.created(request_id)
        return request_id, self._request_view(self._requests[request_id]), self._webhook_url

    def _notify(self, url: str | None, view: dict) -> None:
        """Fire the key_request_event webhook for a new request, if a URL is set."""
        if url:
            document = self.shapes.render("webhook key_request_event",
                                          {"event": webhook.EVENT, "data": view})
            webhook.send(url, document)

    def approve_key_request(self, request_id: str) -> dict:
        """Approve a pending request and issue credentials per the catalogue entry's auth_type."""
        with self._lock:
            req = self._request_or_raise(request_id)
            if req["approved"]:
                raise SandboxError(400, ALREADY_PROCESSED)
            policies = policies_of(req)
            if not policies:
                raise SandboxError(400, "Key request has no policies to apply.")
            for policy_id in policies:
                if policy_id not in self._policies:
                    # Tyk CONTRACT §3.1: such a request is stored but can never be approved.
                    raise SandboxError(
                        400, f"Could not approve key request: policy {policy_id} does not exist."
                    )
            dev = self._developers.get(req["by_user"])
            if dev is None:
                raise SandboxError(
                    400,
                    f"Could not approve key request: developer {req['by_user']} does not exist.",
                )
            entry = self._entry_for(policies[0]) or {}
            auth_type = entry.get("auth_type") or "authToken"
            if self._config.get("secure_key_approval") and auth_type != "oauth":
                # Tyk CONTRACT §3.1: the developer gets a "Generate Key" link instead of
                # the key, which exists only once they use it (`generate_key`). What the
                # approve call answers then is unconfirmed: no key, here.
                req["approved"], req["key_pending"] = True, auth_type
                return {"RawKey": "", "Password": ""}
            if auth_type == "oauth":
                result = self._issue_oauth_client(dev, req, policies[0])
            elif auth_type == "basic":
                # Tyk CONTRACT §3.1: basic auth answers the username as RawKey.
                username = f"{dev['email'].split('@')[0] or 'dev'}-{secrets.token_hex(3)}"
                self._issue_key(dev, policies, f"{self.org_id}{username}", "basic")
                result = {"RawKey": username, "Password": secrets.token_urlsafe(12)}
            else:
                # The older org-prefixed raw key format shown in Tyk CONTRACT §3.1.
                raw = f"{self.org_id}{uuid.uuid4().hex}"
                self._issue_key(dev, policies, raw, auth_type)
                result = {"RawKey": raw, "Password": ""}
            req["approved"] = True
            self._issued.extend(
                v for k, v in result.items() if k in ("RawKey", "Password", "secret") and v
            )
            return result

    def generate_key(self, request_id: str) -> str:
        """The developer's "Generate Key" after a secure approval: issue the key; its id."""
        with self._lock:
            req = self._request_or_raise(request_id)
            auth_type = req.pop("key_pending", None)
            if not req["approved"] or auth_type is None:
                raise SandboxError(400, "No key is waiting to be generated for this request.")
            raw = f"{self.org_id}{uuid.uuid4().hex}"
            self._issued.append(raw)
            return self._issue_key(self._developers[req["by_user"]], policies_of(req), raw,
                                   auth_type)

    def issued_secrets(self) -> list[str]:
        """The raw keys, passwords and OAuth secrets this sandbox has issued (for leak tests)."""
        with self._lock:
            return list(self._issued)

    def _issue_key(self, dev: dict, policies: list[str], raw: str, auth_type: str) -> str:
        """Record a new key on the developer and in the key store; return its key id."""
        # With the Dashboard's and Gateway's `hash_keys` the developer record holds the
        # key's hash, never the raw key (tyk-docs `key-hashing.mdx`). 16 hex chars stand
        # in for Tyk's murmur64 hash.
        key_id = hashlib.sha256(raw.encode()).hexdigest()[:16] if self.server["hash_keys"] \
            else raw
        dev["keys"][key_id] = list(policies)
        for policy_id in policies:
            dev["subscriptions"][policy_id] = key_id
        self._keys[key_id] = self._key_record(key_id, dev["id"], policies, auth_type)
        return key_id

    def _issue_oauth_client(self, dev: dict, req: dict, policy_id: str) -> dict:
        """Create an OAuth client for the developer (Tyk CONTRACT §3.1, OAuth approve)."""
        client = {
            "client_id": uuid.uuid4().hex,
            "secret": secrets.token_urlsafe(24),
            "redirect_uri": req["oauth_info"].get("redirect_uri", ""),
            "app_description": req["fields"].get("oauth_app_description", ""),
            "use_case": req["fields"].get("oauth_use_case", ""),
            "date_created": now_rfc3339(),
        }
        dev["oauth_clients"].setdefault(policy_id, []).append(client)
        self._keys[client["client_id"]] = self._key_record(
            client["client_id"], dev["id"], [policy_id], "oauth")
        return {
            "client_id": client["client_id"],
            "secret": client["secret"],
            "policy_id": policy_id,
            "redirect_uri": client["redirect_uri"],
        }

    def delete_key_request(self, request_id: str) -> None:
        """Delete (decline) a key request; an issued key stays valid."""
        # Tyk CONTRACT §3.1: whether deleting an approved request revokes its key is
        # unconfirmed and most likely not; the sandbox leaves the key alone.
        with self._lock:
            self._request_or_raise(request_id)
            del self._requests[request_id]

    def revoke_developer_key(self, developer_id: str, key_id: str) -> None:
        """Remove a key from the developer's keys and subscriptions and deactivate it."""
        with self._lock:
            dev = self._developer_or_raise(developer_id)
            if key_id not in dev["keys"]:
                raise SandboxError(404, KEY_NOT_FOUND)
            if self.server["hash_keys"] and not self.server["enable_delete_key_by_hash"]:
                raise SandboxError(400, DELETE_BY_HASH_OFF)
            if self.server["revocation"] == "lost":
                return  # answered done; the key stays
            del dev["keys"][key_id]
            dev["subscriptions"] = {p: k for p, k in dev["subscriptions"].items() if k != key_id}
            if key_id in self._keys:
                self._keys[key_id]["active"] = False

    def delete_oauth_client(self, client_id: str) -> None:
        """Delete an OAuth client (`DELETE /api/portal/developers/oauth/{appId}`)."""
        # Tyk CONTRACT §3.2: OAuth apps have an endpoint of their own; the keys endpoint
        # does not know their client ids.
        with self._lock:
            for dev in self._developers.values():
                for policy_id, clients in list(dev["oauth_clients"].items()):
                    kept = [c for c in clients if c.get("client_id") != client_id]
                    if len(kept) == len(clients):
                        continue
                    if self.server["revocation"] == "lost":
                        return  # answered done; the client stays
                    if kept:
                        dev["oauth_clients"][policy_id] = kept
                    else:
                        del dev["oauth_clients"][policy_id]
                    if client_id in self._keys:
                        self._keys[client_id]["active"] = False
                    return
            raise SandboxError(404, NOT_FOUND)

    def set_mode(self, name: str, value) -> None:
        """Also `withheld_rights` (a list of Dashboard areas), `secure_key_approval`
        (a boolean, the portal configuration's), the Dashboard's own `hash_keys` and
        `enable_delete_key_by_hash` (booleans), `revocation` ("applied" or "lost"), the
        paging modes: `page_size` (an integer >= 1), `page_base` (0 or 1) and `pages_total`
        ("counted" or "zero"); `version`: what `/hello` says the version is ("": none)."""
        if name == "withheld_rights":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError("withheld_rights must be a list of areas, e.g. [\"policy\"]")
            with self._lock:
                self.withheld_rights = set(value)
        elif name == "secure_key_approval" or name in SERVER:
            allowed = (("applied", "lost") if name == "revocation" else (True, False))
            if isinstance(value, bool) is (name == "revocation") or value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(map(str, allowed))}")
            with self._lock:
                if name in SERVER:
                    self.server[name] = value
                else:
                    self._config[name] = value
        elif name == "version":
            if not isinstance(value, str) or len(value) > 40:
                raise ValueError("version must be a string of at most 40 characters")
            with self._lock:
                self.version = value
        elif name in PAGING:
            _check_paging(name, value)
            with self._lock:
                self.paging[name] = value
        else:
            super().set_mode(name, value)

    def modes(self) -> dict:
        with self._lock:
            return {**super().modes(), "withheld_rights": sorted(self.withheld_rights),
                    **self.server,
                    "secure_key_approval": bool(self._config.get("secure_key_approval")),
                    **self.paging, "version": self.version}

    def refused(self, method: str, path: str) -> str | None:
        """Tyk's 403 message if the call needs a withheld right, else None."""
        needed = right_for(method, path)
        with self._lock:
            if needed is None or needed[0] not in self.withheld_rights:
                return None
        return ACCESS_DENIED.format(path=path)

    # ----- helpers (call with the lock held) ----------------------------------------------

    def _request_or_raise(self, request_id: str) -> dict:
        if not is_object_id(request_id):
            raise SandboxError(400, "Invalid key request ID.")
        req = self._requests.get(request_id)
        if req is None or not self.readable(request_id):
            raise SandboxError(404, NOT_FOUND)
        return req

    def _developer_or_raise(self, developer_id: str) -> dict:
        if not is_object_id(developer_id):
            raise SandboxError(400, "Invalid developer ID.")
        dev = self._developers.get(developer_id)
        if dev is None:
            raise SandboxError(404, NOT_FOUND)
        return dev

    def _find_developer(self, id_or_email: str) -> dict | None:
        return self._developers.get(id_or_email) or self._by_email(id_or_email)

    def _by_email(self, email: str) -> dict | None:
        wanted = email.strip().lower()
        return next((d for d in self._developers.values() if d["email"].lower() == wanted), None)

    def _entry_for(self, policy_id: str) -> dict | None:
        """The catalogue entry joined to a policy (Tyk CONTRACT §3.4: policy_id is the join key)."""
        return next((e for e in self._catalogue["apis"] if e.get("policy_id") == policy_id), None)

    def _request_view(self, req: dict) -> dict:
        """A request as GET returns it: with the current developer and catalogue entries."""
        view = copy.deepcopy(req)
        policies = policies_of(req)
        dev = self._developers.get(req["by_user"])
        entries = [e for e in (self._entry_for(p) for p in policies) if e is not None]
        first = self._entry_for(policies[0]) if policies else None
        view["portal_developer"] = copy.deepcopy(dev) if dev else {}
        view["catalogue_entry"] = copy.deepcopy(first) if first else {}
        view["catalogues"] = copy.deepcopy(entries)
        return view


def _check_paging(name: str, value) -> None:
    """ValueError unless `value` is one a paging mode takes."""
    allowed = {"page_base": (0, 1), "pages_total": ("counted", "zero")}.get(name)
    if allowed is not None and (isinstance(value, bool) or value not in allowed):
        raise ValueError(f"{name} must be one of {', '.join(map(str, allowed))}")
    if name == "page_size" and (isinstance(value, bool) or not isinstance(value, int)
                                or value < 1):
        raise ValueError("page_size must be an integer >= 1")


def _known(body: dict, template: dict) -> dict:
    """The fields of `body` that `template` has, with the template's types."""
    return {k: v for k, v in body.items()
            if k in template and isinstance(v, type(template[k])) and k != "id"}


def _check_request_body(body: Any) -> None:
    """Reject a create body Tyk could not decode into its KeyRequest struct."""
    # Tyk CONTRACT §3.0: an undecodable body is a 403 "Request body malformed.".
    if not isinstance(body, dict):
        raise SandboxError(403, MALFORMED)
    kinds: dict[str, type | tuple[type, ...]] = {
        "by_user": str, "for_plan": str, "for_api": str, "key": str, "version": str,
        "jwt_secret": str, "certificate": str, "date_created": str, "approved": bool,
        "apply_policies": list, "remove_policies": list, "fields": dict, "oauth_info": dict,
    }  # fmt: skip
    for name, kind in kinds.items():
        value = body.get(name)
        if value is not None and not isinstance(value, kind):
            raise SandboxError(403, MALFORMED)
    for name in ("apply_policies", "remove_policies"):
        if not all(isinstance(p, str) for p in body.get(name) or []):
            raise SandboxError(403, MALFORMED)
    for name in ("fields", "oauth_info"):
        if not all(isinstance(v, str) for v in (body.get(name) or {}).values()):
            raise SandboxError(403, MALFORMED)
    if body.get("date_created"):
        try:
            datetime.fromisoformat(body["date_created"])
        except ValueError:
            raise SandboxError(403, MALFORMED) from None
