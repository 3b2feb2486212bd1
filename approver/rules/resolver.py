"""`Facts`: resolves fact names to values, lazily and once, never raising."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from approver.rules import types
from approver.rules.facts import FactContext, normalise_email_domain
from approver.rules.plugins import call_with_timeout
from approver.rules.registry import PREFIX_SUFFIX, FactDef, Registry
from approver.rules.signals import normalise_email
from approver.rules.values import UNKNOWN, FactUnavailable, Sourced, to_json
from approver.rules.vocabulary import default_registry, shared_builtin_registry

log = logging.getLogger(__name__)

NOT_GIVEN = "not given"  # the note on a fact `from_values` was not given

# Facts that `from_values` can work out from another given fact (a rule test gives an email).
_DERIVED = {
    "developer.email_domain": ("developer.email", normalise_email_domain),
    "developer.email_normalized": ("developer.email", normalise_email),
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
            given[name] = types.from_json(found[0].type, value) if found else value
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
        source = None
        if type(value) is Sourced:  # a known value and where it came from (the trace says)
            value, source = value
        if value is None or value is UNKNOWN:
            return UNKNOWN, source or "no value"
        value, note = _typed(definition, value)
        if note and source:
            note = f"{note} (from {source})"
        return value, note or source

    def _resolve_given(self, name: str) -> tuple[Any, str | None]:
        assert self._given is not None
        if name in self._given:
            value = self._given[name]
            if value is None:
                return UNKNOWN, "given as null"
            found = self.registry.lookup_fact(name)
            return _typed(found[0], value) if found else (UNKNOWN, "no such fact")
        if name in _DERIVED:
            source, derive = _DERIVED[name]
            if self.get(source) is not UNKNOWN:
                try:
                    return derive(self.get(source)), None
                except FactUnavailable as exc:
                    return UNKNOWN, str(exc)
        return UNKNOWN, NOT_GIVEN


    def readable(self) -> dict[str, Any]:
        """Every fact the rules could read, resolved now, JSON-friendly (unknown is null).

        Built-in facts all; a prefix family (`request.fields.*`) as a mapping of the names
        it has (`{"request.fields": {...}}`, present even when empty, so a replay can tell
        "no such field" from "not recorded"); plugin facts only if already resolved (each
        call costs a timeout's worth at worst).
        """
        if self._given is not None:
            return {**{n: to_json(v) for n, v in self._given.items()}, **self.resolved}
        out: dict[str, Any] = {}
        families: list[str] = []
        for definition in self.registry.facts.values():
            if definition.plugin:
                continue
            if not definition.is_prefix:
                out[definition.name] = to_json(self.values[definition.name])
                continue
            family = definition.name[: -len(PREFIX_SUFFIX)]
            families.append(family + ".")
            try:
                names = list(definition.names(self.context)) if definition.names else []
            except Exception:  # e.g. FactUnavailable: no developer record, so no fields
                names = []
            out[family] = {n: to_json(self.values[f"{family}.{n}"]) for n in names}
        prefixes = tuple(families)
        out.update((n, v) for n, v in self.resolved.items() if not n.startswith(prefixes))
        return out


def _typed(definition: FactDef, value: Any) -> tuple[Any, str | None]:
    if types.conforms(definition.type, value):
        # A plugin's tuple is a list to the rules: `eq` compares it with the rule's list.
        return (list(value) if type(value) is tuple else value), None
    return UNKNOWN, f"not {definition.type}: got {types.kind(value)} {types.literal(value)}"[:200]


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
