"""When a domain was registered, from RDAP (RFC 9083): one configured base URL, or the
server the IANA bootstrap (RFC 9224) names for the domain's TLD."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests

from approver.signals import Answer, Unavailable

BOOTSTRAP_URL = "https://data.iana.org/rdap/dns.json"
# A registration date does not change: kept a day (a transfer or re-registration shows then).
TTL = 86400
BOOTSTRAP_TTL = 86400
BOOTSTRAP_RETRY = 60  # after a failed bootstrap read, not asked again for this long
BODY_LIMIT = 1 << 20
EARLIEST = datetime(1985, 1, 1, tzinfo=UTC)  # the first .com; anything before is nonsense


class Bootstrap:
    """The IANA bootstrap, read at most once a day per process (a failure: once a minute)."""

    def __init__(self, url: str = BOOTSTRAP_URL):
        self.url = url
        self._lock = threading.Lock()
        self._services: dict[str, str] | None = None
        self._until = 0.0
        self._error = ""

    def base_for(self, domain: str, session: requests.Session, deadline: float) -> str:
        """The RDAP base URL serving `domain`'s TLD; Unavailable if none does."""
        with self._lock:
            if time.monotonic() >= self._until:
                self._refresh(session, deadline)
            services, error = self._services, self._error
        if services is None:
            raise Unavailable(error)
        labels = domain.split(".")
        for i in range(len(labels)):
            base = services.get(".".join(labels[i:]))
            if base:
                return base
        raise Unavailable(f"RDAP: no registry serves .{labels[-1]} (IANA bootstrap)")

    def _refresh(self, session: requests.Session, deadline: float) -> None:
        try:
            document = _get_json(session, self.url, deadline)
            services = {}
            for entry in document["services"]:
                tlds, urls = entry[0], [u for u in entry[1] if u.startswith("https://")]
                for tld in tlds if urls else ():
                    services[str(tld).lower()] = urls[0].rstrip("/")
        except (Unavailable, KeyError, IndexError, TypeError, AttributeError) as exc:
            self._services, self._until = None, time.monotonic() + BOOTSTRAP_RETRY
            self._error = f"RDAP: the IANA bootstrap could not be read: {exc}"
            return
        self._services, self._until = services, time.monotonic() + BOOTSTRAP_TTL


def _get_json(session: requests.Session, url: str, deadline: float,
              missing_ok: bool = False) -> dict | None:
    left = deadline - time.monotonic()
    host = urlsplit(url).netloc
    if left <= 0:
        raise Unavailable(f"RDAP: no time left to ask {host}")
    try:
        with session.get(url, timeout=left, stream=True, allow_redirects=True,
                         headers={"Accept": "application/rdap+json"}) as resp:
            if resp.status_code == 404 and missing_ok:
                return None
            if resp.status_code != 200:
                raise Unavailable(f"RDAP: {host} answered {resp.status_code}")
            body = resp.raw.read(BODY_LIMIT + 1, decode_content=True)
    except requests.Timeout:
        raise Unavailable(f"RDAP: {host} timed out ({left:.1f}s left)") from None
    except requests.RequestException as exc:
        raise Unavailable(f"RDAP: {host} unreachable ({type(exc).__name__})") from None
    if len(body) > BODY_LIMIT:
        raise Unavailable(f"RDAP: {host} answered over {BODY_LIMIT} bytes")
    try:
        document = json.loads(body)
    except ValueError:
        raise Unavailable(f"RDAP: {host} answered something not JSON") from None
    if not isinstance(document, dict):
        raise Unavailable(f"RDAP: {host} answered JSON that is not an object")
    return document


def _registered(document: dict, host: str, name: str) -> datetime:
    events = document.get("events")
    for event in events if isinstance(events, list) else ():
        if isinstance(event, dict) and event.get("eventAction") == "registration":
            try:
                when = datetime.fromisoformat(str(event.get("eventDate")))
            except ValueError:
                break
            when = when if when.tzinfo else when.replace(tzinfo=UTC)
            if not EARLIEST <= when <= datetime.now(UTC):
                raise Unavailable(f"RDAP: {host} says {name} was registered {when:%Y-%m-%d}")
            return when
    raise Unavailable(f"RDAP: {host} gives no registration date for {name}")


def registered(domain: str, session: requests.Session, deadline: float,
               base: str | None = None, bootstrap: Bootstrap | None = None) -> Answer:
    """When `domain` (or the registered domain above it) was registered, as an ISO date.

    Asks `base` if given, else the bootstrap's server for the TLD; a name the registry
    does not know (404) is tried again one label up, down to two labels.
    """
    if base is None:
        base = (bootstrap or Bootstrap()).base_for(domain, session, deadline)
    host = urlsplit(base).netloc
    labels = domain.split(".")
    for i in range(max(len(labels) - 1, 1)):
        name = ".".join(labels[i:])
        document = _get_json(session, f"{base}/domain/{name}", deadline, missing_ok=True)
        if document is not None:
            when = _registered(document, host, name)
            return Answer(when.isoformat(), f"RDAP {host}: {name} registered "
                          f"{when:%Y-%m-%d}", TTL)
    raise Unavailable(f"RDAP: {host} knows no {domain}")
