"""The Tyk Developer Portal admin API client (`<portal>/portal-api`, Tyk CONTRACT §4)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import requests

from approver.portal.models import (
    PENDING,
    AccessRequest,
    AppAccess,
    Decision,
    credential_ids,
)
from approver.tyk.errors import BadRequest, DashboardError, NotFound, clean_message
from approver.tyk.http import ApiClient, ErrorEnvelope
from approver.tyk.http import q as _q

log = logging.getLogger(__name__)

API_PREFIX = "/portal-api"
PAGE_SIZE = 100
_DONE = {"approve": "approved", "reject": "rejected"}
# A guard for walking lists whose end the portal does not announce.
MAX_PAGES = 1_000


def _status_answer(response: requests.Response) -> str:
    """The portal's `StatusWithMessage` answer: its message; an error status is an error."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and str(body.get("status", "")).lower() == "error":
        raise ErrorEnvelope(clean_message(body.get("message") or body.get("errors")))
    return clean_message(body.get("message")) if isinstance(body, dict) else ""


class Portal(ApiClient):
    """A client of the new Developer Portal's admin API.

    ``base_url`` is the portal's address (``APPROVER_PORTAL_URL``); calls go under
    ``/portal-api`` with ``Authorization: <admin API token>`` (no "Bearer").
    Keep one per process: it owns a ``requests.Session``.
    """

    service = "Portal"

    def __init__(self, base_url: str, token: str, **kwargs: Any) -> None:
        super().__init__(base_url, token, **kwargs)
        if not self.base_url.endswith(API_PREFIX):
            self.base_url += API_PREFIX
        # How this portal takes approve and reject: PUT (the spec), else POST (Tyk's
        # portal-go client since its 2024 revamp), once a 405 has said so.
        self.decide_method = "PUT"

    def __enter__(self) -> Portal:
        return self

    def error_message(self, body: Any) -> object:
        # The portal answers `{"errors": [...]}` (OnlyErrors) or `{"status", "message"}`.
        if not isinstance(body, dict):
            return None
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            return "; ".join(str(e) for e in errors)
        return body.get("message")

    def _get_items(self, path: str, params: dict | None = None) -> list[dict]:
        """GET a list: a bare array, or `{"data": [...]}` (the plans list)."""
        body = self._get_json(path, params)
        if isinstance(body, dict):
            body = body.get("data")
        if not isinstance(body, list):
            body = [] if body is None else body
        if not isinstance(body, list):
            raise DashboardError("expected a JSON list", status=200, method="GET", path=path)
        return [d for d in body if isinstance(d, dict)]

    def _walk(self, path: str) -> Iterator[dict]:
        """Every item of a paged list (`page`, `per_page`), each id once.

        The first page is asked without `page` (the spec: "Defaults to 1 when omitted"),
        so it is the first whether the portal counts pages from 0 or 1.
        """
        def read(page: int | None) -> list[dict]:
            params = {"per_page": PAGE_SIZE} if page is None else {
                "page": page, "per_page": PAGE_SIZE}
            return self._get_items(path, params)

        return self._walk_pages(read, lambda item: item.get("ID"), first=None,
                                limit=MAX_PAGES)

    # -- access requests --------------------------------------------------------------

    def list_access_requests(self, status: str | None = None) -> list[AccessRequest]:
        """All access requests (every page), or those with `status` (e.g. "pending")."""
        # The list has no documented status filter: it is filtered here.
        found = [AccessRequest.from_json(d) for d in self._walk("/access_requests")]
        return [r for r in found if r.id and (status is None or r.status == status)]

    def get_access_request(self, id: str) -> AccessRequest:
        """One access request; one without a `Status` is an error, never "not pending"."""
        path = f"/access_requests/{_q(id)}"
        found = AccessRequest.from_json(self._get_object(path))
        if not found.status:
            # A missing fact must not read as a person's decision (skip, or a final deny):
            # the job fails and is tried again.
            raise DashboardError("the access request has no Status", method="GET",
                                 path=path)
        return found

    def approve_access_request(self, id: str) -> Decision:
        """Approve (the portal issues credentials); one approved already is done."""
        return self._decide(id, "approve")

    def reject_access_request(self, id: str) -> Decision:
        """Reject (the portal takes no reason); one rejected already is done."""
        return self._decide(id, "reject")

    def _decide(self, id: str, verb: str) -> Decision:
        path = f"/access_requests/{_q(id)}/{verb}"
        try:
            self._send_decision(path)
        except BadRequest as exc:
            # Tyk CONTRACT §4: 422 with a StatusWithMessage when the portal refuses; the
            # wording is undocumented, so the request's own status decides.
            if exc.status != 422:
                raise
            status = self.get_access_request(id).status
            if status == PENDING:
                raise
            if status != _DONE[verb]:
                # Decided the other way meanwhile: not done.
                raise BadRequest(f"cannot {verb}: the access request is {status}",
                                 status=exc.status, method=exc.method, path=path) from exc
            log.info("access request %s was already %s at %s: done", id, status, verb)
            return Decision(already_processed=True, status=status)
        return Decision(already_processed=False, status=_DONE[verb])

    def _send_decision(self, path: str) -> None:
        """PUT an approve or reject, or POST it where the portal answers PUT with 405.

        A 405 means the call was not acted on, so sending it again as POST is safe; the
        method that worked is kept for the next decisions.
        """
        # Not idempotent: approving creates credentials, so retried only if never sent.
        try:
            self._call(self.decide_method, path, _status_answer, idempotent=False)
        except BadRequest as exc:
            if exc.status != 405 or self.decide_method == "POST":
                raise
            log.warning("the portal answered PUT %s with 405: approving and rejecting "
                        "with POST from now on", path)
            self.decide_method = "POST"
            self._call("POST", path, _status_answer, idempotent=False)

    def delete_access_request(self, id: str) -> bool:
        """Delete an access request, revoking its credentials: False if already gone."""
        return self._delete(f"/access_requests/{_q(id)}")

    # -- users, apps, products, plans ----------------------------------------------------

    def get_user(self, id: str) -> dict:
        """One user (developer or admin)."""
        return self._get_object(f"/users/{_q(id)}")

    def get_user_custom_attributes(self, id: str) -> dict[str, str]:
        """The user's custom attributes by identifier, every page (`{}` if it has none)."""
        try:
            return custom_attributes(list(self._walk(f"/users/{_q(id)}/custom-attributes")))
        except NotFound:
            return {}

    def list_app_access_requests(self, app_id: str) -> list[AccessRequest]:
        """The access requests of one app, every page."""
        return [AccessRequest.from_json(d)
                for d in self._walk(f"/apps/{_q(app_id)}/access-requests")]

    def list_apps(self) -> list[dict]:
        """Every developer app (`ID`, `Name`, `UserID`), every page."""
        return list(self._walk("/apps"))

    def app_access(self, app_id: str) -> list[AppAccess]:
        """The access requests of one app, each with what tells its credentials apart.

        The list carries each request's `Credentials` (the spec's `AccessRequest-index`);
        where an item has none listed, they are read from its own credentials list.
        """
        found = []
        for item in self._walk(f"/apps/{_q(app_id)}/access-requests"):
            ar = AccessRequest.from_json(item)
            if not ar.id:
                raise DashboardError("an access request of the app has no ID", status=200,
                                     method="GET", path=f"/apps/{app_id}/access-requests")
            listed = item.get("Credentials")
            if not isinstance(listed, list):
                listed = list(self._walk(
                    f"/apps/{_q(app_id)}/access-requests/{_q(ar.id)}/credentials"))
            found.append(AppAccess(ar.id, ar.status, ar.product_names,
                                   credential_ids(listed)))
        return found

    def get_product(self, id: str) -> dict:
        """One API product."""
        return self._get_object(f"/products/{_q(id)}")

    def get_plan(self, id: str) -> dict:
        """One plan."""
        return self._get_object(f"/plans/{_q(id)}")

    def list_products(self) -> list[dict]:
        """Every product (summaries)."""
        return list(self._walk("/products"))

    def list_plans(self) -> list[dict]:
        """Every plan (summaries)."""
        return list(self._walk("/plans"))

    def ping(self, timeout: float = 2.0) -> None:
        """Check the portal answers and accepts the token; raise DashboardError if not."""
        short = (min(self.timeout[0], timeout), min(self.timeout[1], timeout))
        self._call("GET", "/access_requests", lambda response: None,
                   params={"page": 1, "per_page": 1}, retries=0, timeout=short)


def custom_attributes(value: Any) -> dict[str, str]:
    """Custom attributes as {identifier: value}, from the portal's list or a plain object."""
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items() if v is not None}
    found: dict[str, str] = {}
    for item in value if isinstance(value, list) else []:
        if not isinstance(item, dict):
            continue
        about = item.get("CustomAttribute") if isinstance(item.get("CustomAttribute"),
                                                          dict) else item
        name = about.get("Identifier") or about.get("Name")
        if name and item.get("Value") is not None:
            found[str(name)] = str(item["Value"])
    return found
