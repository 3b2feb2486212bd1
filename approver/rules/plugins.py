"""Fact plugins: entry points in group `approver.facts`, run with a timeout in a small pool."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import entry_points
from typing import Any

from approver.rules.registry import FactDef, Registry

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "approver.facts"
_POOL_SIZE = 4
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def register_plugin(registry: Registry, name: str, obj: Any) -> list[FactDef]:
    """Register what a plugin entry point loaded: a callable named `name`, or fact definitions."""
    if isinstance(obj, list | tuple):
        items = list(obj)
    elif getattr(obj, "fact_def", None) is not None or isinstance(obj, FactDef):
        items = [obj]
    elif callable(obj):
        doc = (obj.__doc__ or "").strip()
        items = [FactDef(name, obj, "any", doc.splitlines()[0] if doc else f"plugin {name}")]
    else:
        raise TypeError(f"plugin {name!r} is neither a callable nor a list of facts")
    added = []
    for item in items:
        definition = item if isinstance(item, FactDef) else getattr(item, "fact_def", None)
        if not isinstance(definition, FactDef):
            raise TypeError(f"plugin {name!r} lists {item!r}, which is not made with @fact")
        added.append(registry.add_fact(dataclasses.replace(definition, plugin=True)))
    return added


def load_plugins(registry: Registry) -> list[str]:
    """Register every installed `approver.facts` plugin; a broken one is logged and skipped."""
    loaded = []
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            register_plugin(registry, ep.name, ep.load())
        except Exception as exc:  # a bad plugin must not stop the service; its facts stay unknown
            log.warning("fact plugin %s (%s) not loaded: %r", ep.name, ep.value, exc)
        else:
            loaded.append(ep.name)
    return loaded


def call_with_timeout(fn: Callable[..., Any], args: tuple, timeout: float) -> Any:
    """Run `fn(*args)` in the shared pool; raise TimeoutError after `timeout` seconds."""
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                # Small and shared: a plugin that hangs keeps its thread, so few can pile up.
                _pool = ThreadPoolExecutor(_POOL_SIZE, thread_name_prefix="approver-fact")
    future = _pool.submit(fn, *args)
    try:
        return future.result(timeout=timeout)
    except TimeoutError:
        future.cancel()
        raise
