"""The rule vocabulary: fact and operator definitions, kept in registries."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from approver.rules.types import normalise as normalise_type

PREFIX_SUFFIX = ".*"
_MISSING = object()
_FOUND_MAX = 4096


@dataclass(frozen=True)
class FactDef:
    """A fact: its name (`a.b` or a prefix `a.b.*`), how to compute it, its type."""

    name: str
    fn: Callable[..., Any]
    type: str
    description: str = ""
    # Plugin facts run in a worker thread with a timeout; built-in ones run inline.
    plugin: bool = False
    # Said with a type mismatch, e.g. "Tyk sends sign-up fields as text".
    hint: str = ""
    # For a prefix fact: `names(context)`, the names it has for one request (recorded with
    # each decision so a backtest sees every value the rules could have read).
    names: Callable[..., Iterable[str]] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "type", normalise_type(self.type))

    @property
    def is_prefix(self) -> bool:
        """Whether this fact stands for a family `prefix.<name>`."""
        return self.name.endswith(PREFIX_SUFFIX)

    @property
    def display_name(self) -> str:
        """The name as documented: `request.fields.<name>` for a prefix fact."""
        return self.name[: -len(PREFIX_SUFFIX)] + ".<name>" if self.is_prefix else self.name


@dataclass(frozen=True)
class OperatorDef:
    """An operator: `fn(actual, prepared) -> bool` on facts of the `types` it accepts.

    `prepare(argument, fact_type)` runs at load: it returns the argument in the form `fn`
    takes, or raises ValueError/TypeError saying what to write instead.
    """

    name: str
    fn: Callable[[Any, Any], bool]
    types: tuple[str, ...]
    description: str = ""
    prepare: Callable[[Any, str], Any] | None = None
    # Only `exists` looks at UNKNOWN; every other operator is "unknown" on it.
    accepts_unknown: bool = False


class Registry:
    """Facts and operators known to rules; the loader rejects any name not in here."""

    def __init__(self) -> None:
        self.facts: dict[str, FactDef] = {}
        self.operators: dict[str, OperatorDef] = {}
        self._prefixes: list[tuple[str, FactDef]] = []
        self._found: dict[str, tuple[FactDef, str | None] | None] = {}

    def add_fact(self, definition: FactDef) -> FactDef:
        """Register a fact definition, replacing one of the same name."""
        self.facts[definition.name] = definition
        self._found = {}
        self._prefixes = sorted(
            ((d.name[:-1], d) for d in self.facts.values() if d.is_prefix),
            key=lambda item: -len(item[0]),  # longest prefix wins
        )
        return definition

    def add_operator(self, definition: OperatorDef) -> OperatorDef:
        """Register an operator definition, replacing one of the same name."""
        self.operators[definition.name] = definition
        return definition

    def copy(self) -> Registry:
        """A new registry with the same definitions."""
        # The prefixes are copied as sorted, not re-sorted per fact as add_fact would.
        new = Registry()
        new.facts = dict(self.facts)
        new.operators = dict(self.operators)
        new._prefixes = list(self._prefixes)
        new._found = {}
        return new

    def lookup_fact(self, name: str) -> tuple[FactDef, str | None] | None:
        """The definition for a fact name and, for a prefix fact, the part after the prefix."""
        found = self._found.get(name, _MISSING)
        if found is _MISSING:
            found = self._lookup(name)
            if len(self._found) < _FOUND_MAX:  # names come from rules and records: few
                self._found[name] = found
        return found

    def _lookup(self, name: str) -> tuple[FactDef, str | None] | None:
        definition = self.facts.get(name)
        if definition is not None and not definition.is_prefix:
            return definition, None
        for prefix, definition in self._prefixes:
            if name.startswith(prefix) and len(name) > len(prefix):
                return definition, name[len(prefix) :]
        return None

    def fact(self, name: str, *, type: str, **options: Any) -> Callable[[Callable], Callable]:
        """Decorator registering `fn(context)` (or `fn(context, suffix)` for `x.*`) here."""
        return fact(name, type=type, registry=self, **options)

    def fact_names(self) -> list[str]:
        """Every fact name as documented (`request.fields.<name>` for prefixes), sorted."""
        return sorted(d.display_name for d in self.facts.values())

    def suggest_fact(self, name: str) -> str:
        """`did you mean ...? valid: ...` for an unknown fact name, looking in the families too.

        `developer.company` suggests `developer.fields.company`: the name under each prefix
        family that shares its first part.
        """
        head, _, last = name.rpartition(".")
        family = [
            prefix + last
            for prefix, _definition in self._prefixes
            if last and prefix.split(".")[0] == head.split(".")[0] and prefix + last != name
        ]
        return suggest(name, self.fact_names(), also=family)


def fact(
    name: str,
    *,
    type: str,
    description: str = "",
    plugin: bool = False,
    hint: str = "",
    names: Callable[..., Iterable[str]] | None = None,
    registry: Registry | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator declaring a fact of a type; registers it in `registry` (default: the module's).

    The function gets `.fact_def`, so a plugin may also export a list of such functions.
    """

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn = builtin_fact(name, type=type, description=description, plugin=plugin, hint=hint,
                          names=names)(fn)
        (REGISTRY if registry is None else registry).add_fact(fn.fact_def)
        return fn

    return decorate


def operator(
    name: str,
    *,
    types: tuple[str, ...],
    description: str = "",
    prepare: Callable[[Any, str], Any] | None = None,
    accepts_unknown: bool = False,
    registry: Registry | None = None,
) -> Callable[[Callable[[Any, Any], bool]], Callable[[Any, Any], bool]]:
    """Decorator declaring an operator on facts of `types`; registers it like `fact`."""

    def decorate(fn: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
        fn = builtin_operator(name, types=types, description=description, prepare=prepare,
                              accepts_unknown=accepts_unknown)(fn)
        (REGISTRY if registry is None else registry).add_operator(fn.operator_def)
        return fn

    return decorate


def builtin_fact(name: str, *, type: str, description: str = "", plugin: bool = False,
                 hint: str = "", names: Callable[..., Iterable[str]] | None = None
                 ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`fact` for the built-in vocabulary: declares without registering anywhere.

    `rules.vocabulary.register_builtins` registers the modules it lists, by their `.fact_def`.
    """

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.fact_def = FactDef(  # type: ignore[attr-defined]
            name, fn, type, description or _first_line(fn.__doc__), plugin, hint, names)
        return fn

    return decorate


def builtin_operator(name: str, *, types: tuple[str, ...], description: str = "",
                     prepare: Callable[[Any, str], Any] | None = None,
                     accepts_unknown: bool = False
                     ) -> Callable[[Callable[[Any, Any], bool]], Callable[[Any, Any], bool]]:
    """`operator` for the built-in vocabulary: declares without registering anywhere."""

    def decorate(fn: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
        fn.operator_def = OperatorDef(  # type: ignore[attr-defined]
            name, fn, tuple(types), description or _first_line(fn.__doc__), prepare,
            accepts_unknown)
        return fn

    return decorate


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0] if (doc or "").strip() else ""


def suggest(name: str, valid: Iterable[str], also: Iterable[str] = ()) -> str:
    """`valid: a, b, c` with the closest matches to `name` first (from `also` too)."""
    names = sorted(set(valid))
    close = difflib.get_close_matches(name, [*names, *also], n=3, cutoff=0.6)
    ordered = close + [n for n in names if n not in close]
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{hint}valid: {', '.join(ordered)}"


# The module-level registry: what `fact`/`operator` register into when given no registry
# (a plugin's own facts), merged with the built-ins by `vocabulary.default_registry()`.
REGISTRY = Registry()
