"""The Tyk Dashboard API client: one requests.Session, timeouts, bounded retries."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from approver import __version__
from approver.tyk.errors import (
    AlreadyProcessed,
    DashboardError,
    DashboardTimeout,
    DashboardUnavailable,
    NotFound,
    clean_message,
    error_for,
)
from approver.tyk.models import Approval, CredentialKind, Developer, KeyRequest, Policy

log = logging.getLogger(__name__)

T = TypeVar("T")

# Statuses worth another try for idempotent calls: the Dashboard or a proxy in front of it
# is briefly unwell. Tyk answers storage failures with 500 (Tyk CONTRACT §3.6).
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Upper bound on one backoff sleep, in seconds.
MAX_BACKOFF = 5.0
# A guard for iter_key_requests when Tyk reports no page count.
MAX_PAGES = 10_000


def _q(value: str) -> str:
    """One path segment, fully percent-encoded."""
    return quote(str(value), safe="")


def _never_sent(exc: requests.exceptions.ConnectionError) -> bool:
    """Whether a connection error happened before any byte of the request left."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.SSLError | requests.exceptions.ProxyError):
        return False
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)


def _credential_kind(response: requests.Response) -> CredentialKind:
    """Which kind of credential an approve answer carries, judged by its field names only."""
    try:
        body = response.json()
    except ValueError:
        return "unknown"
    if not isinstance(body, dict):
        return "unknown"
    # Tyk CONTRACT §3.1: token {RawKey, Password:""}, basic {RawKey, Password}, OAuth
    # {client_id, secret, ...}.
    if "client_id" in body or "secret" in body:
        return "oauth"
    if "RawKey" in body:
        return "basic" if body.get("Password") else "token"
    return "unknown"


class _ErrorEnvelope(Exception):
    """A 2xx answer whose body is Tyk's error envelope; carries only Tyk's Message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _json(response: requests.Response) -> Any:
    """The JSON body; ValueError if it is not JSON."""
    return response.json()


class Dashboard:
    """A client of the Tyk Dashboard API (classic portal endpoints).

    Keep one per process: it owns a ``requests.Session`` and its connection pool.
    ``retries`` is the number of further attempts after the first one.
    """

    def __init__(
        self,
        base_url: str,
        secret: str,
        *,
        connect_timeout: float = 3.05,
        read_timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.1,
        session: requests.Session | None = None,
        observer: Callable[[str, str, str, float], None] | None = None,
    ) -> None:
        parts = urlsplit(str(base_url))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("Dashboard base URL must be an http(s) URL")
        # requests (and the latin-1 codec) would echo a bad header value in their errors;
        # refuse it here without the value.
        if not isinstance(secret, str) or not secret or not all("!" <= c <= "~" for c in secret):
            raise ValueError("Dashboard secret must be non-empty printable ASCII")
        if retries < 0 or backoff < 0:
            raise ValueError("retries and backoff must not be negative")
        self.base_url = str(base_url).rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.retries = retries
        self.backoff = backoff
        self._own_session = session is None
        self._session = session if session is not None else requests.Session()
        # Tyk CONTRACT §3.0: the raw key, no "Bearer". Sent per call, so a session passed
        # in by the caller is never changed.
        self._headers = {
            "authorization": secret,
            "Accept": "application/json",
            "User-Agent": f"tyk-approver/{__version__}",
        }
        self._secret = secret
        # Called after every attempt with (method, path, status or error kind, seconds):
        # how metrics see the Dashboard without this module knowing about them.
        self.observer = observer

    def _observe(self, method: str, path: str, outcome: str, started: float) -> None:
        if self.observer is not None:
            try:
                self.observer(method, path, outcome, time.monotonic() - started)
            except Exception:  # an observer must never break a call
                log.exception("Dashboard call observer failed")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r})"

    def close(self) -> None:
        """Close the session, if this client created it."""
        if self._own_session:
            self._session.close()

    def __enter__(self) -> Dashboard:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- transport ---------------------------------------------------------------------

    def _sleep_before(self, attempt: int) -> float:
        """Full-jitter exponential backoff before try number `attempt` + 1."""
        delay = random.uniform(0, min(MAX_BACKOFF, self.backoff * 2 ** (attempt - 1)))
        time.sleep(delay)
        return delay

    def _error_message(self, response: requests.Response) -> str:
        """Tyk's Message from an error envelope, or the reason phrase."""
        try:
            body = response.json()
        except ValueError:
            body = None
        message = body.get("Message") if isinstance(body, dict) else None
        text = clean_message(message if message is not None else response.reason)
        return text.replace(self._secret, "[redacted]")

    def _call(
        self,
        method: str,
        path: str,
        parse: Callable[[requests.Response], T],
        *,
        params: dict | None = None,
        idempotent: bool = True,
        retries: int | None = None,
        timeout: tuple[float, float] | None = None,
    ) -> T:
        """Send one API call with retries; `parse` reads the 2xx response, which is then dropped."""
        attempts = 1 + (self.retries if retries is None else retries)
        url = self.base_url + path
        for attempt in range(1, attempts + 1):
            error: DashboardError
            retry = False
            started = time.monotonic()
            try:
                response = self._session.request(
                    method,
                    url,
                    params=params,
                    headers=self._headers,
                    timeout=timeout or self.timeout,
                    allow_redirects=False,
                )
            except requests.exceptions.ConnectTimeout:
                error = DashboardTimeout("connect timed out", method=method, path=path)
                retry = True
                self._observe(method, path, "timeout", started)
            except requests.exceptions.Timeout:
                error = DashboardTimeout("read timed out", method=method, path=path)
                # The request may have been acted on: only idempotent calls go again.
                retry = idempotent
                self._observe(method, path, "timeout", started)
            except requests.exceptions.SSLError:
                error = DashboardUnavailable(
                    "TLS handshake failed", method=method, path=path, retryable=False
                )
            except requests.exceptions.ConnectionError as exc:
                never_sent = _never_sent(exc)
                detail = "connection failed" if never_sent else "connection broken"
                error = DashboardUnavailable(detail, method=method, path=path)
                retry = idempotent or never_sent
                self._observe(method, path, "connection_error", started)
            except requests.exceptions.RequestException as exc:
                # Built from the class name only: requests' messages carry the full URL.
                error = DashboardUnavailable(
                    f"request failed ({type(exc).__name__})", method=method, path=path
                )
                retry = idempotent
            else:
                status = response.status_code
                self._observe(method, path, str(status), started)
                log.debug(
                    "Dashboard %s %s -> %s in %.3fs (try %d)",
                    method,
                    path,
                    status,
                    time.monotonic() - started,
                    attempt,
                )
                try:
                    if 200 <= status < 300:
                        return self._parse(response, parse, method, path)
                    error = error_for(
                        status, self._error_message(response), method=method, path=path
                    )
                    retry = idempotent and status in RETRY_STATUSES
                finally:
                    response.close()
                    del response
            if not retry or attempt >= attempts:
                raise error
            delay = self._sleep_before(attempt)
            log.warning(
                "Dashboard %s %s failed (%s); try %d of %d after %.2fs",
                method,
                path,
                error,
                attempt + 1,
                attempts,
                delay,
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def _parse(
        self,
        response: requests.Response,
        parse: Callable[[requests.Response], T],
        method: str,
        path: str,
    ) -> T:
        """Apply `parse` to a 2xx response; a body that is not JSON is a DashboardError."""
        error: DashboardError | None = None
        try:
            return parse(response)
        except _ErrorEnvelope as envelope:
            error = error_for(response.status_code, envelope.message, method=method, path=path)
        except ValueError:
            # Not chained: a JSON error holds the whole body, which may hold a key.
            error = DashboardError(
                "response is not JSON", status=response.status_code, method=method, path=path
            )
        raise error

    def _get_json(self, path: str, params: dict | None = None, **kwargs: Any) -> Any:
        """GET a path and return its JSON body."""
        return self._call("GET", path, _json, params=params, **kwargs)

    def _get_object(self, path: str, params: dict | None = None, **kwargs: Any) -> dict:
        """GET a path whose answer is one JSON object."""
        body = self._get_json(path, params, **kwargs)
        if not isinstance(body, dict):
            raise DashboardError("expected a JSON object", status=200, method="GET", path=path)
        return body

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

    def _delete(self, path: str) -> bool:
        """DELETE a path: True if it went now, False if it was already gone (404)."""
        try:
            self._call("DELETE", path, lambda response: None)
        except NotFound:
            return False
        return True

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

    def iter_key_requests(
        self, approved: bool | None = None, page_size_hint: int | None = None
    ) -> Iterator[KeyRequest]:
        """Key requests page by page (p=1..Pages), for installs where p=-1 is slow.

        Each id is yielded once. Requests that move between pages while walking may be
        missed; the reconciler's next pass sees them. ``page_size_hint`` (Tyk's
        ``page_size``) only lets the walk stop at a short page when Tyk gives no ``Pages``.
        """
        seen: set[str] = set()
        page, last = 1, None
        while page <= (last if last is not None else MAX_PAGES):
            items, pages = self._get_list(
                "/api/portal/requests", self._request_params(approved, page)
            )
            if last is None:
                last = pages if pages is not None else MAX_PAGES
            fresh = [r for r in map(KeyRequest.from_json, items) if r.id not in seen]
            if not fresh:
                # An empty page, or one Tyk repeated because it ignores `p`: the end.
                return
            for request in fresh:
                seen.add(request.id)
                yield request
            if pages is None and page_size_hint and len(items) < page_size_hint:
                return
            page += 1

    def get_key_request(self, id: str) -> KeyRequest:
        """One key request, with its developer and catalogue entry embedded."""
        return KeyRequest.from_json(self._get_object(f"/api/portal/requests/{_q(id)}"))

    def approve_key_request(self, request: KeyRequest) -> Approval:
        """Approve a key request and report the ids of the keys it produced.

        Tyk's answer holds the raw credential; it is dropped unread but for its field
        names. The key ids are read back from the developer afterwards, so if that read
        fails the call raises and a repeat is answered "already processed", which this
        method returns as done.
        """
        path = f"/api/portal/requests/approve/{_q(request.id)}"
        try:
            # Not idempotent: retried by the client only if the request never left.
            kind = self._call("PUT", path, self._approve_answer, idempotent=False)
            already = False
        except AlreadyProcessed:
            kind, already = "unknown", True
        if not request.developer_id:
            return Approval(already_processed=already, key_ids=(), kind=kind)
        developer = self.get_developer(request.developer_id)
        return Approval(
            already_processed=already,
            key_ids=_new_key_ids(request, developer, kind),
            kind=kind,
        )

    def _approve_answer(self, response: requests.Response) -> CredentialKind:
        """Judge the approve answer's kind; a 2xx error envelope still counts as an error."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and str(body.get("Status", "")).lower() == "error":
            message = clean_message(body.get("Message"))
            del body
            raise _ErrorEnvelope(message)
        del body
        return _credential_kind(response)

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
        """Revoke a developer's key by its id: True if revoked now, False if already gone."""
        # Tyk CONTRACT §3.7: key_id is the id from developer.keys (the hash when hashed).
        return self._delete(f"/api/portal/developers/{_q(developer_id)}/keys/{_q(key_id)}")

    # -- policies, catalogue, configuration (Tyk CONTRACT §3.3-3.5) ---------------------

    def get_policy(self, id: str) -> Policy:
        """One policy."""
        return Policy.from_json(self._get_object(f"/api/portal/policies/{_q(id)}"))

    def list_policies(self) -> list[Policy]:
        """All policies (p=-1)."""
        items, _ = self._get_list("/api/portal/policies", {"p": -1})
        return [Policy.from_json(d) for d in items]

    def get_catalogue(self) -> dict:
        """The portal catalogue document."""
        return self._get_object("/api/portal/catalogue")

    def get_portal_configuration(self) -> dict:
        """The portal configuration document."""
        return self._get_object("/api/portal/configuration")

    def ping(self, timeout: float = 2.0) -> None:
        """Check the Dashboard answers and accepts the secret; raise DashboardError if not."""
        short = (min(self.timeout[0], timeout), min(self.timeout[1], timeout))
        self._call(
            "GET", "/api/portal/configuration", lambda response: None, retries=0, timeout=short
        )


def _new_key_ids(
    request: KeyRequest, developer: Developer, kind: CredentialKind
) -> tuple[str, ...]:
    """The ids of the keys (or OAuth clients) the approval produced, read from the developer.

    First choice: ids for the request's policies that the developer embedded in the request
    did not have yet. Else `subscriptions[policy]`, which Tyk points at the newest key
    (Tyk CONTRACT §3.1; liip's approve() reads it). OAuth approvals create clients, not
    keys, and their client_id is not a secret.
    """
    before = request.developer
    policies = request.policies
    clients = [c for p in policies for c in developer.oauth_clients.get(p, ())]
    keys = list(developer.keys_for(policies))
    subscribed = [developer.subscriptions[p] for p in policies if developer.subscriptions.get(p)]
    if before is not None:
        known_clients = {c for ids in before.oauth_clients.values() for c in ids}
        new_clients = [c for c in clients if c not in known_clients]
        new_keys = [k for k in keys if k not in before.keys]
    else:
        new_clients = new_keys = []
    if kind == "oauth":
        choices = (new_clients, clients, subscribed)
    else:
        choices = (new_keys, subscribed, new_clients, clients)
    return tuple(dict.fromkeys(next((ids for ids in choices if ids), [])))
