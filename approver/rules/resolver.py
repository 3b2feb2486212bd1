"""`Facts`: resolves fact names to values, lazily and once, never raising."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from approver.rules.facts import FactContext, normalise_email_domain
from approver.rules.plugins import call_with_timeout
from approver.rules.registry import Registry, default_registry, shared_builtin_registry
from approver.rules.values import UNKNOWN, FactUnavailable, parse_datetime, to_json

log = logging.getLogger(__name__)

# Facts that `from_values` can work out from another given fact (a rule test gives an email).
_DERIVED = {
    "developer.email_domain": ("developer.email", normalise_email_domain),
}


class Facts:
    """Fact values for one decision: computed on first use, cached; UNKNOWN with a note why."""

    def __init__(
        self,
        context: FactContext | None,
        registry: Registry | None = None,
        plugin_timeout: float = 2.0,
    ):
        self.context = context
        self.registry = registry if registry is not None else default_registry()
        self.plugin_timeout = plugin_timeout
        self.values: dict[str, Any] = _Cache(self)
        self.notes: dict[str, str] = {}
        self._given: dict[str, Any] | None = None

    @classmethod
    def from_values(cls, mapping: Mapping[str, Any], registry: Registry | None = None) -> Facts:
        """Facts given outright (flat dotted names or nested dicts); missing ones are UNKNOWN."""
        facts = cls(None, registry if registry is not None else shared_builtin_registry())
        given: dict[str, Any] = {}
        _flatten(mapping, "", given)
        for name, value in given.items():
            found = facts.registry.lookup_fact(name)
            if found and found[0].type == "datetime" and value is not None:
                value = parse_datetime(value) or value
            given[name] = value
        facts._given = given
        return facts

    def get(self, name: str) -> Any:
        """The value of fact `name`, or UNKNOWN."""
        return self.values[name]

    __getitem__ = get

    def _compute(self, name: str) -> Any:
        value, note = self._resolve(name)
        if note:
            self.notes[name] = note
        return value

    @property
    def resolved(self) -> dict[str, Any]:
        """Facts resolved so far, as JSON-friendly values (UNKNOWN is null; `notes` says why)."""
        return {name: to_json(value) for name, value in self.values.items()}

    def _resolve(self, name: str) -> tuple[Any, str | None]:
        if self._given is not None:
            return self._resolve_given(name)
        found = self.registry.lookup_fact(name)
        if found is None:
            return UNKNOWN, "no such fact"
        definition, suffix = found
        args = (self.context,) if suffix is None else (self.context, suffix)
        try:
            if definition.plugin:
                value = call_with_timeout(definition.fn, args, self.plugin_timeout)
            else:
                value = definition.fn(*args)
        except FactUnavailable as exc:
            return UNKNOWN, str(exc) or "not available"
        except TimeoutError:
            log.warning("fact plugin %s timed out after %ss", name, self.plugin_timeout)
            return UNKNOWN, f"plugin {name} timed out after {self.plugin_timeout}s"
        except Exception as exc:  # a fact never breaks a decision: it becomes unknown
            kind = "plugin" if definition.plugin else "fact"
            log.warning("%s %s raised %r", kind, name, exc)
            return UNKNOWN, f"{kind} raised {type(exc).__name__}: {exc}"
        if value is None or value is UNKNOWN:
            return UNKNOWN, "no value"
        return value, None

    def _resolve_given(self, name: str) -> tuple[Any, str | None]:
        assert self._given is not None
        if name in self._given:
            value = self._given[name]
            return (UNKNOWN, "given as null") if value is None else (value, None)
        if name in _DERIVED:
            source, derive = _DERIVED[name]
            if self.get(source) is not UNKNOWN:
                try:
                    return derive(self.get(source)), None
                except FactUnavailable as exc:
                    return UNKNOWN, str(exc)
        return UNKNOWN, "not given"


class _Cache(dict):
    """Resolved values; a missing name is resolved and stored (compiled rules index it directly)."""

    __slots__ = ("_facts",)

    def __init__(self, facts: Facts):
        super().__init__()
        self._facts = facts

    def __missing__(self, name: str) -> Any:
        value = self._facts._compute(name)
        self[name] = value
        return value


def _flatten(mapping: Mapping[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            _flatten(value, f"{name}.", out)
        else:
            out[name] = value
