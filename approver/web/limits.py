"""Who the client is (behind trusted proxies only) and per-address rate limits in Redis."""

from __future__ import annotations

import ipaddress
import time

from flask import current_app, request

from approver.state import PREFIX

WINDOW = 60


def _address(text: str):
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def client_address() -> str:
    """The client's address: the peer's, or X-Forwarded-For's when the peer is a trusted proxy.

    X-Forwarded-For is read from the right: each proxy appends the address it saw, so the
    first address that is not one of our proxies is the client. Anything before it was
    written by the client and proves nothing.
    """
    proxies = current_app.extensions["approver"].settings.trusted_proxies
    peer = request.remote_addr or ""
    address = _address(peer)
    if address is None or not any(address in net for net in proxies):
        return peer
    hops = request.headers.get("X-Forwarded-For", "").split(",")
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            return peer
        if not any(address in net for net in proxies):
            return str(address)
    return peer


def allow(name: str, limit: int) -> bool:
    """Count one request of `name` for this client; False once over `limit` a minute."""
    redis = current_app.extensions["approver"].redis
    window = int(time.time() // WINDOW)
    key = f"{PREFIX}limit:{name}:{client_address()}:{window}"
    pipe = redis.pipeline(transaction=False)
    pipe.incr(key)
    pipe.expire(key, WINDOW * 2)
    count, _ = pipe.execute()
    return count <= limit
