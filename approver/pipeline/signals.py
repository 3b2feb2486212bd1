"""The signals of one decision, gathered into `FactContext.extra["signals"]` for the facts
in `rules/signals.py`: domain lists (admins' files, a list `approver data update` loaded,
the installed packages), DNS and RDAP (cached in Redis; asked concurrently, all within
`APPROVER_SIGNALS_TIMEOUT`), and this service's history. What cannot be had is unknown,
with why; never false.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from datetime import UTC, datetime
from pathlib import Path

import requests

from approver.rules import FactContext, FactUnavailable
from approver.rules.facts import developer_email, normalise_email_domain
from approver.rules.signals import normalise_email
from approver.signals import Answer, Unavailable, datasets, mx, rdap
from approver.state.history import History
from approver.state.signals import Signals
from approver.tyk.http import Session

log = logging.getLogger(__name__)

# Lookups of every decision in this process share these threads; each ends by its deadline.
_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="signals")
_local = threading.local()
_bootstrap = rdap.Bootstrap()
_resolvers: dict[tuple, object] = {}
_admin: dict[Path, tuple[tuple, dict]] = {}
HISTORY = "this service's decisions (Redis)"


def lists_folder(rules_path: Path) -> Path:
    """Where the admins' domain lists are: `lists/` beside the rule files."""
    return (rules_path if rules_path.is_dir() else rules_path.parent) / datasets.LISTS_DIR


def _admin_lists(folder: Path) -> dict[str, datasets.DomainList]:
    """The admins' lists, read again only when a file changed."""
    files = datasets.list_files(folder)
    stamp = tuple((p.name, p.stat().st_mtime_ns) for p in files)
    held = _admin.get(folder)
    if held is None or held[0] != stamp:
        held = (stamp, datasets.admin_lists(folder))
        _admin[folder] = held
    return held[1]


def identity(email) -> tuple[str | None, str | None]:
    """(normalised email, domain) of an address; None for what it does not give."""
    try:
        return normalise_email(email), normalise_email_domain(email)
    except FactUnavailable:
        try:
            return None, normalise_email_domain(email)
        except FactUnavailable:
            return None, None


def gather(rt, ref: str, developer_id: str, context: FactContext) -> dict:
    """Put the signals for this request into `context.extra["signals"]`; that dict."""
    signals: dict[str, dict] = {}
    context.extra["signals"] = signals
    try:
        email = developer_email(context)
    except FactUnavailable as exc:
        email, why = None, str(exc)
    else:
        why = "developer has no email address"
    normalized, domain = identity(email) if email else (None, None)
    for name, value in History(rt.redis).read(ref, developer_id or "", normalized,
                                              domain).items():
        signals[name] = ({"value": value, "source": HISTORY} if value is not None
                         else {"unknown": f"{why}: nothing to count by"})
    if domain is None:
        why = f"{why} (no email domain)" if email is None else "the email has no valid domain"
        for name in ("disposable", "free_mail", "domain_accepts_mail", "domain_age_days"):
            signals[f"developer.email_{name}"] = {"unknown": why}
        return signals
    store = Signals(rt.redis)
    keys = [f"mx:{domain}", f"rdap:{domain}"]
    loaded, cached = store.read(datasets.KINDS, datasets.parents(domain), keys)
    admin = _admin_lists(lists_folder(rt.settings.rules_path))
    for kind in datasets.KINDS:
        signals[f"developer.email_{kind}"] = _listed(kind, domain, admin, loaded[kind])
    answers = _lookups(rt.settings, domain, dict(zip(keys, cached, strict=True)), store)
    signals["developer.email_domain_accepts_mail"] = answers[keys[0]]
    registered = answers[keys[1]]
    if "value" in registered:
        days = (datetime.now(UTC) - datetime.fromisoformat(registered["value"])).days
        registered = {"value": days, "source": registered["source"]}
    signals["developer.email_domain_age_days"] = registered
    return signals


def gather_offline(context: FactContext, rules_path: Path) -> dict:
    """The signals a dry run from a file can have: the installed and the admins' lists; the
    rest (DNS, RDAP, history: what needs the network or Redis) unknown, saying so."""
    signals: dict[str, dict] = {}
    context.extra["signals"] = signals
    try:
        domain = normalise_email_domain(developer_email(context))
    except FactUnavailable as exc:
        domain, why = None, str(exc)
    admin = _admin_lists(lists_folder(rules_path))
    for kind in datasets.KINDS:
        signals[f"developer.email_{kind}"] = (_listed(kind, domain, admin, None) if domain
                                              else {"unknown": why})
    offline = {"unknown": "not asked in a dry run from a file (DNS, RDAP and history are)"}
    for name in ("developer.email_domain_accepts_mail", "developer.email_domain_age_days",
                 *History.FACTS):
        signals[name] = offline
    return signals


def _listed(kind: str, domain: str, admin: dict[str, datasets.DomainList],
            loaded: tuple[dict, str | None] | None) -> dict:
    stem = kind.replace("_", "-")
    for way, value in (("allow", False), ("block", True)):
        found = admin.get(f"{stem}-{way}")
        entry = found.match(domain) if found else None
        if entry:
            return {"value": value, "source": f"{found.label}: {entry}"}
    if loaded is not None:
        meta, entry = loaded
        label = (f"{kind} list loaded from {meta.get('source')} "
                 f"({str(meta.get('loaded_at'))[:10]}, {meta.get('count')} domains)")
        return {"value": entry is not None, "source": f"{label}: {entry}" if entry else label}
    packaged = datasets.packaged(kind)
    entry = packaged.match(domain)
    return {"value": entry is not None,
            "source": f"{packaged.label}: {entry}" if entry else packaged.label}


def _session() -> requests.Session:
    # The environment's proxy and CA settings worked out once per host, as the API
    # clients' sessions do: requests walks the environment per call otherwise.
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = Session()
    return session


def _resolver(servers: tuple):
    found = _resolvers.get(servers)
    if found is None:
        found = _resolvers[servers] = mx.resolver(servers)
    return found


def _lookups(settings, domain: str, cached: dict[str, dict | None],
             store: Signals) -> dict[str, dict]:
    """The DNS and RDAP answers: from the cache, else asked together within the bound."""
    timeout = settings.signals_timeout
    deadline = time.monotonic() + timeout
    asks = {
        f"mx:{domain}": lambda: mx.accepts_mail(_resolver(settings.dns_servers), domain,
                                                deadline),
        f"rdap:{domain}": lambda: rdap.registered(domain, _session(), deadline,
                                                  base=settings.rdap_url, bootstrap=_bootstrap),
    }
    out = {k: v for k, v in cached.items() if v is not None}
    futures = {_pool.submit(asks[k]): k for k in asks if k not in out}
    if not futures:
        return out
    done, _late = wait_for(futures, timeout=max(deadline - time.monotonic(), 0))
    fresh: dict[str, tuple[dict, int]] = {}
    for future, key in futures.items():
        if future not in done:
            kind = "DNS" if key.startswith("mx:") else "RDAP"
            out[key] = {"unknown": f"{kind}: no answer for {domain} within {timeout:g}s "
                        "(APPROVER_SIGNALS_TIMEOUT)"}
            continue
        try:
            answer: Answer = future.result()
        except Unavailable as exc:
            out[key] = {"unknown": str(exc)}
            continue
        except Exception as exc:  # a lookup never breaks a decision: its fact is unknown
            log.warning("signal lookup %s raised %r", key, exc)
            out[key] = {"unknown": f"{key} lookup failed: {type(exc).__name__}"}
            continue
        out[key] = {"value": answer.value, "source": answer.source}
        fresh[key] = (out[key], answer.ttl)
    store.cache(fresh)
    return out


def record(rt, pipe, request, outcome: str, email: str | None) -> None:
    """Queue on `pipe` what deciding `request` adds to the history (velocity, denials)."""
    normalized, domain = identity(email) if email else (None, None)
    History(rt.redis).record_decision(
        pipe, request.ref, request.developer_id or "", normalized, domain,
        denied=outcome == "deny" and not rt.settings.shadow)
