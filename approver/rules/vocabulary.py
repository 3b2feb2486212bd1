"""The vocabulary rules may use: the built-in facts and operators, registered explicitly
from one list of modules, and the installed plugins' facts.

A new built-in fact or operator goes in one of `BUILTIN_MODULES` (declared with
`builtin_fact` / `builtin_operator`); a new module of them goes in that list.
"""

from __future__ import annotations

import threading
from types import ModuleType

from approver.rules import facts, operators, portal, signals
from approver.rules.plugins import load_plugins
from approver.rules.registry import REGISTRY, FactDef, OperatorDef, Registry

# The built-in vocabulary, in the order it is registered.
BUILTIN_MODULES: tuple[ModuleType, ...] = (facts, operators, portal, signals)


def register_builtins(registry: Registry) -> Registry:
    """Register every fact and operator the `BUILTIN_MODULES` declare; `registry`."""
    for module in BUILTIN_MODULES:
        for value in vars(module).values():
            if isinstance(getattr(value, "fact_def", None), FactDef):
                registry.add_fact(value.fact_def)
            if isinstance(getattr(value, "operator_def", None), OperatorDef):
                registry.add_operator(value.operator_def)
    return registry


_builtins: Registry | None = None
_default_ready = False
_default_lock = threading.Lock()


def shared_builtin_registry() -> Registry:
    """The built-ins, one copy shared by callers that only look names up (never mutate)."""
    global _builtins
    if _builtins is None:
        _builtins = register_builtins(Registry())
    return _builtins


def builtin_registry() -> Registry:
    """A fresh registry holding the built-in facts and operators only (no plugins)."""
    return shared_builtin_registry().copy()


def default_registry() -> Registry:
    """The module registry: built-ins plus installed plugins, loaded once."""
    global _default_ready
    if not _default_ready:
        with _default_lock:
            if not _default_ready:
                # Names registered here before (by a `@fact` without registry=) win.
                builtins = shared_builtin_registry()
                for name, definition in builtins.facts.items():
                    if name not in REGISTRY.facts:
                        REGISTRY.add_fact(definition)
                for name, op in builtins.operators.items():
                    if name not in REGISTRY.operators:
                        REGISTRY.add_operator(op)
                load_plugins(REGISTRY)
                _default_ready = True
    return REGISTRY
