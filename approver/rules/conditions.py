"""Conditions: `when:` parsed into a tree, compiled to fast closures, traced on demand.

Logic is three-valued (Kleene): True, False, or None for unknown. `all` is False if any
child is False, else unknown if any is unknown; `any` is True if any child is True, else
unknown if any is unknown; `not` keeps unknown. A rule matches only on True, so a fact
that could not be had never makes a rule match.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from approver.rules import operators
from approver.rules.errors import Problem
from approver.rules.registry import OperatorDef, Registry, suggest
from approver.rules.values import UNKNOWN, to_json

COMBINATORS = ("all", "any", "not")

Getter = Callable[[str], Any]
Values = Mapping[str, Any]
Evaluator = Callable[[Values], "bool | None"]


@dataclass(frozen=True)
class Leaf:
    """`fact op expected`, with the argument prepared at load (e.g. a compiled regex)."""

    fact: str
    op: OperatorDef
    expected: Any
    prepared: Any


@dataclass(frozen=True)
class Group:
    """`all` or `any` of children; `implicit` when it is several keys of one mapping."""

    kind: str
    children: tuple[Node, ...]
    implicit: bool = False


@dataclass(frozen=True)
class Not:
    """The negation of a child (unknown stays unknown)."""

    child: Node


Node = Leaf | Group | Not


class Parser:
    """Turns `when:` data into a Node tree, collecting problems with their lines."""

    def __init__(self, registry: Registry, file: str, line_of: Callable[[tuple], int]):
        self.registry = registry
        self.file = file
        self.line_of = line_of
        self.problems: list[Problem] = []
        self.facts_used: set[str] = set()

    def problem(self, path: tuple, message: str) -> None:
        """Record a problem at the line of `path`."""
        self.problems.append(Problem(self.file, self.line_of(path), message))

    def parse(self, data: Any, path: tuple) -> Node | None:
        """A mapping of conditions (several keys mean all); None when it always holds."""
        if data is None:
            return None
        if not isinstance(data, dict):
            self.problem(path, "a condition must be a mapping of facts or all/any/not")
            return None
        nodes = [n for n in (self._entry(k, v, (*path, k)) for k, v in data.items()) if n]
        if not nodes:
            return None
        if len(nodes) == 1:
            return nodes[0]
        return Group("all", tuple(nodes), implicit=True)

    def _entry(self, key: Any, value: Any, path: tuple) -> Node | None:
        if key in ("all", "any"):
            if not isinstance(value, list) or not value:
                self.problem(path, f"{key} needs a non-empty list of conditions")
                return None
            children = [self.parse(item, (*path, i)) for i, item in enumerate(value)]
            if any(c is None for c in children):
                # An empty item always holds; keep its meaning explicit rather than dropping it.
                self.problem(path, f"{key} has an empty condition")
                return None
            return Group(key, tuple(c for c in children if c is not None))
        if key == "not":
            if isinstance(value, list):
                value = {"all": value}
            child = self.parse(value, path)
            if child is None:
                self.problem(path, "not needs a condition")
                return None
            return Not(child)
        if not isinstance(key, str) or self.registry.lookup_fact(key) is None:
            self.problem(
                path,
                f"unknown fact {key!r}; {suggest(str(key), self.registry.fact_names())}",
            )
            return None
        self.facts_used.add(key)
        if isinstance(value, dict):
            if not value:
                self.problem(path, f"no operator for {key}")
                return None
            leaves = [self._leaf(key, op, arg, (*path, op)) for op, arg in value.items()]
            kept = tuple(leaf for leaf in leaves if leaf is not None)
            if len(kept) != len(leaves):
                return None
            return kept[0] if len(kept) == 1 else Group("all", kept, implicit=True)
        return self._leaf(key, "eq", value, path)

    def _leaf(self, fact: str, op_name: Any, expected: Any, path: tuple) -> Leaf | None:
        op = self.registry.operators.get(op_name) if isinstance(op_name, str) else None
        if op is None:
            names = self.registry.operators
            self.problem(path, f"unknown operator {op_name!r}; {suggest(str(op_name), names)}")
            return None
        if expected is None and op_name in ("eq", "ne"):
            self.problem(path, f"{fact}: null never matches a fact; use {{exists: false}}")
            return None
        try:
            prepared = op.prepare(expected) if op.prepare else expected
        except (ValueError, TypeError) as exc:
            self.problem(path, f"{fact}: {op_name} {exc}")
            return None
        return Leaf(fact, op, expected, prepared)


def _always(values: Values) -> bool:
    return True


def compile_node(node: Node | None) -> Evaluator:
    """A closure `ev(values) -> True | False | None` for a node; no trace, no allocation.

    `values` maps fact names to values and resolves a missing name on lookup (Facts.values).
    """
    if node is None:
        return _always
    if isinstance(node, Leaf):
        return _compile_leaf(node)
    if isinstance(node, Not):
        child = node.child
        if (isinstance(child, Leaf) and child.op.fn is operators.eq
                and not child.op.accepts_unknown):
            return _fast_not_eq(child.fact, child.op.fn, child.prepared)
        inner = compile_node(child)

        def negate(values: Values) -> bool | None:
            result = inner(values)
            return None if result is None else not result

        return negate
    children = tuple(compile_node(c) for c in node.children)
    if len(children) == 2 and node.kind == "all":
        first, second = children

        def all_of_two(values: Values) -> bool | None:
            a = first(values)
            if a is False:
                return False
            b = second(values)
            if b is False:
                return False
            return None if a is None or b is None else True

        return all_of_two
    if node.kind == "all":

        def all_of(values: Values) -> bool | None:
            unknown = False
            for child in children:
                result = child(values)
                if result is False:
                    return False
                if result is None:
                    unknown = True
            return None if unknown else True

        return all_of

    if len(children) == 2:
        first, second = children

        def any_of_two(values: Values) -> bool | None:
            a = first(values)
            if a is True:
                return True
            b = second(values)
            if b is True:
                return True
            return None if a is None or b is None else False

        return any_of_two

    def any_of(values: Values) -> bool | None:
        unknown = False
        for child in children:
            result = child(values)
            if result is True:
                return True
            if result is None:
                unknown = True
        return None if unknown else False

    return any_of


def _compile_leaf(leaf: Leaf) -> Evaluator:
    name, fn, arg = leaf.fact, leaf.op.fn, leaf.prepared
    if leaf.op.accepts_unknown:

        def on_any(values: Values) -> bool | None:
            return _safe(fn, values[name], arg)

        return on_any
    # The commonest operators on plain values skip a call; the general path handles the rest.
    fast = _FAST.get(fn)
    if fast is not None:
        return fast(name, fn, arg)

    def on_known(values: Values) -> bool | None:
        actual = values[name]
        if actual is UNKNOWN:
            return None
        try:
            result = fn(actual, arg)
        except (TypeError, ValueError, AttributeError):  # a value of the wrong type: no match
            return False
        return result if result is True or result is False else bool(result)

    return on_known


def _fast_eq(name: str, fn: Callable, arg: Any) -> Evaluator:
    def eq(values: Values) -> bool | None:
        actual = values[name]
        if actual is UNKNOWN:
            return None
        return actual == arg if type(actual) is type(arg) else _safe(fn, actual, arg)

    return eq


def _fast_not_eq(name: str, fn: Callable, arg: Any) -> Evaluator:
    """`not: {fact: value}` in one step: the negation of `_fast_eq` (unknown stays unknown)."""

    def not_eq(values: Values) -> bool | None:
        actual = values[name]
        if actual is UNKNOWN:
            return None
        return not (actual == arg if type(actual) is type(arg) else _safe(fn, actual, arg))

    return not_eq


def _fast_contains(name: str, fn: Callable, arg: Any) -> Evaluator:
    def contains(values: Values) -> bool | None:
        actual = values[name]
        if actual is UNKNOWN:
            return None
        if type(actual) is list:
            return arg in actual
        return _safe(fn, actual, arg)

    return contains


def _fast_membership(name: str, fn: Callable, arg: Any) -> Evaluator:
    wanted = fn is operators.in_

    def member(values: Values) -> bool | None:
        actual = values[name]
        if actual is UNKNOWN:
            return None
        if type(actual) is str:
            return (actual in arg) is wanted
        return _safe(fn, actual, arg)

    return member


def _fast_affix(name: str, fn: Callable, arg: Any) -> Evaluator:
    method = str.startswith if fn is operators.starts_with else str.endswith

    def affix(values: Values) -> bool | None:
        actual = values[name]
        if actual is UNKNOWN:
            return None
        return type(actual) is str and method(actual, arg)

    return affix


def _fast_matches(name: str, fn: Callable, arg: Any) -> Evaluator:
    search = arg.search

    def matches(values: Values) -> bool | None:
        actual = values[name]
        if actual is UNKNOWN:
            return None
        return type(actual) is str and search(actual) is not None

    return matches


def _fast_contains_any(name: str, fn: Callable, arg: Any) -> Evaluator:
    try:
        wanted = frozenset(arg)
    except TypeError:
        wanted = None

    def contains_any(values: Values) -> bool | None:
        actual = values[name]
        if actual is UNKNOWN:
            return None
        if wanted is not None and type(actual) is list:
            try:
                return not wanted.isdisjoint(actual)
            except TypeError:
                pass
        return _safe(fn, actual, arg)

    return contains_any


_FAST: dict[Callable, Callable[[str, Callable, Any], Evaluator]] = {
    operators.eq: _fast_eq,
    operators.in_: _fast_membership,
    operators.not_in: _fast_membership,
    operators.starts_with: _fast_affix,
    operators.ends_with: _fast_affix,
    operators.matches: _fast_matches,
    operators.contains_any: _fast_contains_any,
    operators.contains: _fast_contains,
}


def _safe(fn: Callable[[Any, Any], bool], actual: Any, arg: Any) -> bool:
    try:
        return bool(fn(actual, arg))
    except (TypeError, ValueError, AttributeError):  # a value of the wrong type: no match
        return False


def _shown(result: bool | None) -> bool | str:
    return "unknown" if result is None else result


def trace_node(node: Node, get: Getter, notes: dict[str, str]) -> tuple[bool | None, dict]:
    """Evaluate like `compile_node`, returning the result and a JSON-friendly account."""
    if isinstance(node, Leaf):
        actual = get(node.fact)
        if actual is UNKNOWN and not node.op.accepts_unknown:
            result = None
        else:
            result = _safe(node.op.fn, actual, node.prepared)
        entry = {
            "fact": node.fact,
            "actual": to_json(actual),
            "op": node.op.name,
            "expected": to_json(node.expected),
            "result": _shown(result),
        }
        if actual is UNKNOWN:
            entry["note"] = notes.get(node.fact, "unknown")
        return result, entry
    if isinstance(node, Not):
        inner, inner_entry = trace_node(node.child, get, notes)
        result = None if inner is None else not inner
        return result, {"not": inner_entry, "result": _shown(result)}
    results, entries = trace_children(node, get, notes)
    result = _combine(node.kind, results)
    return result, {node.kind: entries, "result": _shown(result)}


def trace_children(node: Group, get: Getter, notes: dict[str, str]) -> tuple[list, list[dict]]:
    """Trace a group's children, stopping where evaluation short-circuits."""
    stop = node.kind != "all"  # all stops at False, any at True
    results, entries = [], []
    for child in node.children:
        result, entry = trace_node(child, get, notes)
        results.append(result)
        entries.append(entry)
        if result is stop:
            break
    return results, entries


def _combine(kind: str, results: list[bool | None]) -> bool | None:
    decisive = kind != "all"
    if decisive in results:
        return decisive
    return None if None in results else not decisive


def trace_rule(node: Node | None, get: Getter, notes: dict[str, str]) -> tuple[bool | None, list]:
    """A rule's result and its list of conditions (an implicit top-level `all` is flattened)."""
    if node is None:
        return True, []
    if isinstance(node, Group) and node.implicit:
        results, entries = trace_children(node, get, notes)
        return _combine("all", results), entries
    result, entry = trace_node(node, get, notes)
    return result, [entry]
