"""The Tyk Dashboard API client: one requests.Session, timeouts, bounded retries."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import requests

from approver.tyk import permissions
from approver.tyk.errors import (
    AlreadyProcessed,
    BadRequest,
    DashboardError,
    DeleteByHashRefused,
    Forbidden,
    clean_message,
)
from approver.tyk.http import ApiClient, ErrorEnvelope
from approver.tyk.http import q as _q
from approver.tyk.models import Approval, Developer, KeyRequest, Policy

log = logging.getLogger(__name__)

# A guard for iter_key_requests against a list that never ends.
MAX_PAGES = 10_000


class Dashboard(ApiClient):
    """A client of the Tyk Dashboard API (classic portal endpoints).

    Keep one per process: it owns a ``requests.Session`` and its connection pool.
    ``retries`` is the number of further attempts after the first one.
    """

    service = "Dashboard"

    def __enter__(self) -> Dashboard:
        return self

    def needed_right(self, method: str, path: str) -> str | None:
        return permissions.grant(method, path)

    def _get_list(self, path: str, params: dict | None = None) -> tuple[list[dict], int | None]:
        """GET a Tyk list envelope {"Data": [...], "Pages": n}: the items and the page count."""
        body = self._get_json(path, params)
        if isinstance(body, list):
            return [d for d in body if isinstance(d, dict)], None
        if not isinstance(body, dict):
            raise DashboardError("expected a JSON list", status=200, method="GET", path=path)
        # Tyk answers "Data": null for an empty list.
        data = body.get("Data") or []
        pages = body.get("Pages")
        return (
            [d for d in data if isinstance(d, dict)] if isinstance(data, list) else [],
            pages if isinstance(pages, int) and not isinstance(pages, bool) else None,
        )

    # -- key requests (Tyk CONTRACT §3.1) ------------------------------------------------

    @staticmethod
    def _request_params(approved: bool | None, page: int) -> dict:
        """Query parameters for listing key requests."""
        params: dict[str, Any] = {"p": page}
        if approved is not None:
            params["approved"] = "true" if approved else "false"
        return params

    def list_key_requests(self, approved: bool | None = None, page: int = -1) -> list[KeyRequest]:
        """Key requests, all of them by default (p=-1); approved=False lists pending ones."""
        items, _ = self._get_list("/api/portal/requests", self._request_params(approved, page))
        return [KeyRequest.from_json(d) for d in items]

    def iter_key_requests(self, approved: bool | None = None) -> Iterator[KeyRequest]:
        """Key requests page by page (p=0, 1, 2, …), for installs where p=-1 is slow.

        Each id is yielded once, whether Tyk counts pages from 0 (its documented sample
        asks `p=0`) or from 1, and whatever its `page_size`; `Pages` is not trusted (the
        same sample answers `"Pages": 0` beside a full page). Requests that move between
        pages while walking may be missed; the reconciler's next pass sees them.
        """
        def read(page: int | None) -> list[KeyRequest]:
            items, _ = self._get_list("/api/portal/requests",
                                      self._request_params(approved, page or 0))
            return [KeyRequest.from_json(d) for d in items]

        return self._walk_pages(read, lambda r: r.id, first=0, limit=MAX_PAGES)

    def get_key_request(self, id: str) -> KeyRequest:
        """One key request, with its developer and catalogue entry embedded."""
        return KeyRequest.from_json(self._get_object(f"/api/portal/requests/{_q(id)}"))

    def approve_key_request(self, request: KeyRequest) -> Approval:
        """Approve a key request and report the ids of the keys it produced.

        Tyk's answer holds the raw credential; it is dropped unread. The key ids are those
        the developer holds afterwards for the request's policies and did not hold before
        (the developer embedded in the request, else read first): with secure key approval
        (Tyk CONTRACT §3.1) there may be none yet, and then none is reported, never an
        older key. If the read after fails the call raises, and a repeat is answered
        "already processed", which this method returns as done.
        """
        before = request.developer
        if before is None and request.developer_id:
            before = self.get_developer(request.developer_id)
        path = f"/api/portal/requests/approve/{_q(request.id)}"
        try:
            # Not idempotent: retried by the client only if the request never left.
            self._call("PUT", path, self._approve_answer, idempotent=False)
            already = False
        except AlreadyProcessed:
            already = True
        if before is None:
            return Approval(already_processed=already, key_ids=())
        after = self.get_developer(request.developer_id)
        held = before.credential_ids(request.policies)
        return Approval(
            already_processed=already,
            key_ids=tuple(i for i in after.credential_ids(request.policies) if i not in held),
            held_before=held,
        )

    def _approve_answer(self, response: requests.Response) -> None:
        """A 2xx error envelope still counts as an error; the answer is otherwise unread."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and str(body.get("Status", "")).lower() == "error":
            message = clean_message(body.get("Message"))
            del body
            raise ErrorEnvelope(message)
        del body

    def delete_key_request(self, id: str) -> bool:
        """Decline (delete) a key request: True if deleted now, False if already gone."""
        return self._delete(f"/api/portal/requests/{_q(id)}")

    # -- developers (Tyk CONTRACT §3.2) --------------------------------------------------

    def get_developer(self, id: str) -> Developer:
        """One developer, without passwords or OAuth secrets."""
        return Developer.from_json(self._get_object(f"/api/portal/developers/{_q(id)}"))

    def get_developer_by_email(self, email: str) -> Developer:
        """The developer with this email address."""
        path = f"/api/portal/developers/email/{_q(email)}"
        return Developer.from_json(self._get_object(path))

    def revoke_developer_key(self, developer_id: str, key_id: str) -> bool:
        """Revoke a developer's key by its id: True if revoked now, False if already gone.

        DeleteByHashRefused if Tyk refuses to delete it by its hash (its message says so):
        an error naming the Dashboard setting, never "revoked".
        """
        # Tyk CONTRACT §3.7: key_id is the id from developer.keys: the hash when hashed,
        # the key itself when not, so the path is never shown with it.
        label = f"/api/portal/developers/{_q(developer_id)}/keys/{{key}}"
        try:
            return self._delete(f"/api/portal/developers/{_q(developer_id)}/keys/{_q(key_id)}",
                                label=label)
        except (BadRequest, Forbidden) as exc:
            # What Tyk answers then is unverified (docs/tyk-compatibility.md, hashing):
            # a refusal that speaks of hashes is taken for this one.
            if "hash" not in exc.message.lower():
                raise
            raise DeleteByHashRefused(
                f"Tyk refused to delete the key by its hash ({exc.message}): enable "
                "`enable_delete_key_by_hash` in the Dashboard's configuration "
                "(tyk_analytics.conf)", status=exc.status, method="DELETE",
                path=label) from None

    def delete_oauth_client(self, client_id: str) -> bool:
        """Delete an OAuth client (app) by its client id: False if already gone."""
        # Tyk CONTRACT corrections: OAuth clients have an endpoint of their own; the keys
        # endpoint does not know their ids.
        return self._delete(f"/api/portal/developers/oauth/{_q(client_id)}",
                            label="/api/portal/developers/oauth/{client}")

    # -- policies, catalogue, configuration (Tyk CONTRACT §3.3-3.5) ---------------------

    def get_policy(self, id: str) -> Policy:
        """One policy."""
        return Policy.from_json(self._get_object(f"/api/portal/policies/{_q(id)}"))

    def list_policies(self, page: int = -1) -> list[Policy]:
        """All policies (p=-1), or one page of them."""
        items, _ = self._get_list("/api/portal/policies", {"p": page})
        return [Policy.from_json(d) for d in items]

    def get_catalogue(self) -> dict:
        """The portal catalogue document."""
        return self._get_object("/api/portal/catalogue")

    def version(self) -> str | None:
        """The Dashboard's version, if its `/hello` says (undocumented: docs/tyk-compatibility.md,
        versions); None if it does not."""
        try:
            body = self._get_json("/hello", retries=0)
        except DashboardError as exc:
            if exc.status is None or exc.status >= 500:
                raise
            return None  # no /hello, or not JSON: not exposed
        found = body.get("version") if isinstance(body, dict) else None
        return (clean_message(found)[:40] or None) if isinstance(found, str) else None

    def ping(self, timeout: float = 2.0) -> str | None:
        """Check the Dashboard answers and accepts the secret; raise DashboardError if not.

        Returns the organisation the secret serves, as the portal configuration names it
        (`org_id`, tyk-docs `portal-configuration.mdx`), or None where it does not.
        """
        short = (min(self.timeout[0], timeout), min(self.timeout[1], timeout))
        return self._call("GET", "/api/portal/configuration", _org_of, retries=0, timeout=short)


def _org_of(response: requests.Response) -> str | None:
    """The `org_id` of a portal configuration answer, if it is one."""
    try:
        body = response.json()
    except ValueError:
        return None
    org = body.get("org_id") if isinstance(body, dict) else None
    return (clean_message(org)[:64] or None) if isinstance(org, str) else None
