"""The HTTP machinery Tyk's API clients share: one session, timeouts, bounded retries.

Used by the classic Dashboard client (`approver.tyk.client`) and the new Developer Portal
client (`approver.portal.client`); both raise the error classes of `approver.tyk.errors`.
Over 300 lines: everything one call goes through (session, timeouts, retries, the mapping of
answers to errors) in one place.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Hashable, Iterator
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from approver import __version__
from approver.tyk.errors import (
    DashboardError,
    DashboardTimeout,
    DashboardUnavailable,
    NotFound,
    clean_message,
    error_for,
)

log = logging.getLogger(__name__)
# urllib3 logs every request line, full path included, at DEBUG; without key hashing a
# path may hold a key (a developer key's id is the key, docs/tyk-compatibility.md).
logging.getLogger("urllib3.connectionpool").setLevel(logging.INFO)

T = TypeVar("T")

# Statuses worth another try for idempotent calls: the server or a proxy in front of it
# is briefly unwell. Tyk answers storage failures with 500 (Tyk CONTRACT §3.6).
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Upper bound on one backoff sleep, in seconds.
MAX_BACKOFF = 5.0


def q(value: str) -> str:
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


class ErrorEnvelope(Exception):
    """A 2xx answer whose body is an error envelope; carries only the server's message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def json_body(response: requests.Response) -> Any:
    """The JSON body; ValueError if it is not JSON."""
    return response.json()


class Session(requests.Session):
    """A Session that works out the environment's settings for a host once, not per call.

    `requests` reads the proxy variables (walking the whole environment), `no_proxy` and
    the CA bundle variables again for every call it sends: ~0.3 ms of CPU a call here.
    They are fixed for a process; the result is kept per scheme and host (what no_proxy
    matches on) and the call's own arguments, so every call gets the same settings as
    before, from memory.
    """

    def __init__(self) -> None:
        super().__init__()
        self._env_settings: dict[tuple, dict] = {}

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        parts = urlsplit(url)
        try:
            key = (parts.scheme, parts.netloc, tuple(sorted((proxies or {}).items())),
                   stream, verify, cert, self.trust_env)
            cached = self._env_settings.get(key)
        except TypeError:  # an unhashable argument: work it out as requests does
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        if cached is None:
            cached = super().merge_environment_settings(url, proxies, stream, verify, cert)
            if len(self._env_settings) < 64:
                self._env_settings[key] = cached
        return {**cached, "proxies": dict(cached["proxies"])}


class ApiClient:
    """A JSON API client: one ``requests.Session``, timeouts on every call, retries.

    ``retries`` is the number of further attempts after the first one; only idempotent
    calls (or calls that never left) are tried again, after a full-jitter backoff.
    Subclasses name the ``service`` (for messages) and read error bodies
    (``error_message``).
    """

    service = "API"

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
        before_call: Callable[[], None] | None = None,
    ) -> None:
        parts = urlsplit(str(base_url))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{self.service} base URL must be an http(s) URL")
        # requests (and the latin-1 codec) would echo a bad header value in their errors;
        # refuse it here without the value.
        if not isinstance(secret, str) or not secret or not all("!" <= c <= "~" for c in secret):
            raise ValueError(f"{self.service} secret must be non-empty printable ASCII")
        if retries < 0 or backoff < 0:
            raise ValueError("retries and backoff must not be negative")
        self.base_url = str(base_url).rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.retries = retries
        self.backoff = backoff
        self._own_session = session is None
        self._session = session if session is not None else Session()
        # Tyk CONTRACT §3.0, §4: the raw secret, no "Bearer". Sent per call, so a session
        # passed in by the caller is never changed.
        self._headers = {
            "authorization": secret,
            "Accept": "application/json",
            "User-Agent": f"tyk-approver/{__version__}",
        }
        self._secret = secret
        # Called after every attempt with (method, path, status or error kind, seconds):
        # how metrics see the API without this module knowing about them.
        self.observer = observer
        # Called before every attempt, and may wait: how the caller keeps all its
        # processes under a ceiling of calls per second without this module knowing how.
        self.before_call = before_call
        # Where the server's pages count from (0 or 1), once a walk has seen it.
        self.page_base: int | None = None

    def _observe(self, method: str, path: str, outcome: str, started: float) -> None:
        if self.observer is not None:
            try:
                self.observer(method, path, outcome, time.monotonic() - started)
            except Exception:  # an observer must never break a call
                log.exception("%s call observer failed", self.service)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r})"

    def close(self) -> None:
        """Close the session, if this client created it."""
        if self._own_session:
            self._session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- transport ---------------------------------------------------------------------

    def _sleep_before(self, attempt: int) -> float:
        """Full-jitter exponential backoff before try number `attempt` + 1."""
        delay = random.uniform(0, min(MAX_BACKOFF, self.backoff * 2 ** (attempt - 1)))
        time.sleep(delay)
        return delay

    def error_message(self, body: Any) -> object:
        """The server's message in an error body (parsed JSON, or None), if it has one."""
        return body.get("Message") if isinstance(body, dict) else None

    def _error_message(self, response: requests.Response) -> str:
        """The server's message from an error body, or the reason phrase; secret redacted."""
        try:
            body = response.json()
        except ValueError:
            body = None
        message = self.error_message(body)
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
        label: str | None = None,
    ) -> T:
        """Send one API call with retries; `parse` reads the 2xx response, which is then dropped.

        `label`: how the path is shown in errors, log lines and to the observer, when the
        path itself holds something that must not be (a key id that is the key).
        """
        attempts = 1 + (self.retries if retries is None else retries)
        url = self.base_url + path
        path = label or path
        for attempt in range(1, attempts + 1):
            error: DashboardError
            retry = False
            if self.before_call is not None:
                self.before_call()
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
                    "%s %s %s -> %s in %.3fs (try %d)",
                    self.service,
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
                    if status == 403:
                        error = self._refused(error)
                    retry = idempotent and status in RETRY_STATUSES
                finally:
                    response.close()
                    del response
            if not retry or attempt >= attempts:
                raise error
            delay = self._sleep_before(attempt)
            log.warning(
                "%s %s %s failed (%s); try %d of %d after %.2fs",
                self.service,
                method,
                path,
                error,
                attempt + 1,
                attempts,
                delay,
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def needed_right(self, method: str, path: str) -> str | None:
        """The API user's right a call needs, as the operator grants it, if known."""
        return None

    def _refused(self, error: DashboardError) -> DashboardError:
        """A 403, said plainly: which call, and which right it needs (logged, and raised)."""
        right = self.needed_right(error.method or "", error.path or "")
        message = (f"the {self.service} API user lacks the right {right} "
                   f"(Tyk: {error.message})" if right else error.message)
        log.error("%s refused %s %s for lack of rights (HTTP 403)%s", self.service,
                  error.method, error.path, f": grant the API user {right}" if right else "")
        return type(error)(message, status=error.status, method=error.method, path=error.path)

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
        except ErrorEnvelope as envelope:
            error = error_for(response.status_code, envelope.message, method=method, path=path)
        except ValueError:
            # Not chained: a JSON error holds the whole body, which may hold a key.
            error = DashboardError(
                "response is not JSON", status=response.status_code, method=method, path=path
            )
        raise error

    def _get_json(self, path: str, params: dict | None = None, **kwargs: Any) -> Any:
        """GET a path and return its JSON body."""
        return self._call("GET", path, json_body, params=params, **kwargs)

    def _get_object(self, path: str, params: dict | None = None, **kwargs: Any) -> dict:
        """GET a path whose answer is one JSON object."""
        body = self._get_json(path, params, **kwargs)
        if not isinstance(body, dict):
            raise DashboardError("expected a JSON object", status=200, method="GET", path=path)
        return body

    def _walk_pages(self, read: Callable[[int | None], list[T]],
                    key: Callable[[T], Hashable], first: int | None,
                    limit: int) -> Iterator[T]:
        """Every item of a paged list, each once, whatever page size the server honours
        and whether its pages count from 0 or from 1 (docs/tyk-compatibility.md, paging).

        `read(page)` answers one page; the first is asked as `first` (0, or None to leave
        the page out). Until the count is known, page 1 comes next: where pages count
        from 1 it repeats the first and is passed over (and the count is kept for later
        walks); where they count from 0, it is the second. The walk ends at an empty
        page, at a page that adds nothing new (a server that ignores the page asked for),
        or after a page shorter than the first (the page size the server honours is at
        least the first page's), never at a page shorter than the size asked for.
        """
        seen: set = set()
        size = None
        following = range(1 + (self.page_base or 0), limit)
        for page in (first, *following):
            items = read(page)
            fresh = [item for item in items if key(item) not in seen]
            if page == 1 and self.page_base is None and items:
                self.page_base = 0 if fresh else 1
                if not fresh:
                    continue  # pages count from 1: page 1 was the first page again
            if not fresh:
                return
            for item in fresh:
                seen.add(key(item))
                yield item
            if size is None:
                size = len(items)
            elif len(items) < size:
                return

    def _delete(self, path: str, label: str | None = None) -> bool:
        """DELETE a path: True if it went now, False if it was already gone (404)."""
        try:
            self._call("DELETE", path, lambda response: None, label=label)
        except NotFound:
            return False
        return True
