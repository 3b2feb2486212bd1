"""Conditions: `when:` parsed into a tree, compiled to fast closures, traced on demand.

Logic is three-valued (Kleene): True, False, or None for unknown. `all` is False if any
child is False, else unknown if any is unknown; `any` is True if any child is True, else
unknown if any is unknown; `not` keeps unknown. A rule matches only on True; the engine
stops at a rule that is unknown (see engine.py), so a fact that could not be had, or a
value that is not of its type, never lets a later rule decide in its place.

Over 300 lines: parsing, compiling and tracing walk the same node types, side by side.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from approver.rules import operators, types
from approver.rules.errors import Problem
from approver.rules.registry import FactDef, OperatorDef, Registry, suggest
from approver.rules.values import UNKNOWN, to_json

COMBINATORS = ("all", "any", "not")

Getter = Callable[[str], Any]
Values = Mapping[str, Any]
Evaluator = Callable[[Values], "bool | None"]


@dataclass(frozen=True)
class Leaf:
    """`fact op expected`: the argument prepared at load (e.g. a compiled regex) in `type`.

    `convert` (from `as:`) turns the fact's value into `type` first; UNKNOWN if it cannot.
    """

    fact: str
    op: OperatorDef
    expected: Any
    prepared: Any
    type: str
    convert: Callable[[Any], Any] | None = None


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
        found = self.registry.lookup_fact(key) if isinstance(key, str) else None
        if found is None:
            self.problem(path, _unknown_fact(self.registry, key))
            return None
        self.facts_used.add(key)
        definition = found[0]
        if not isinstance(value, dict):
            return self._leaf(key, definition, "eq", value, path, None)
        operations = dict(value)
        convert = None
        type_ = definition.type
        if "as" in operations:
            target = operations.pop("as")
            try:
                convert = _guarded(types.converter(type_, target))
            except ValueError as exc:
                self.problem((*path, "as"), f"{key}: {exc}")
                return None
            type_ = target
        if not operations:
            self.problem(path, f"no operator for {key}")
            return None
        leaves = [
            self._leaf(key, definition, op, arg, (*path, op), convert, type_)
            for op, arg in operations.items()
        ]
        kept = tuple(leaf for leaf in leaves if leaf is not None)
        if len(kept) != len(leaves):
            return None
        return kept[0] if len(kept) == 1 else Group("all", kept, implicit=True)

    def _leaf(
        self,
        fact: str,
        definition: FactDef,
        op_name: Any,
        expected: Any,
        path: tuple,
        convert: Callable[[Any], Any] | None,
        type_: str | None = None,
    ) -> Leaf | None:
        type_ = type_ or definition.type
        op = self.registry.operators.get(op_name) if isinstance(op_name, str) else None
        if op is None:
            names = self.registry.operators
            self.problem(path, f"unknown operator {op_name!r}; {suggest(str(op_name), names)}")
            return None
        if not types.accepts(op.types, type_) or (type_ == types.ANY and not op.accepts_unknown):
            self.problem(path, _mismatch(self.registry, fact, definition, op, expected, type_))
            return None
        try:
            prepared = op.prepare(expected, type_) if op.prepare else expected
        except TypeError as exc:  # the argument is not of the fact's type: say which it is
            self.problem(path, f"{fact}: {op_name} {types.literal(expected)}: "
                               f"{_described(fact, definition, type_)}; {exc}")
            return None
        except ValueError as exc:
            self.problem(path, f"{fact}: {op_name} {types.literal(expected)}: {exc}")
            return None
        return Leaf(fact, op, expected, prepared, type_, convert)


# Rule keys an author may have indented one level too deep, under `when:`.
_RULE_KEYS = ("then", "reason", "wait", "on_unknown", "description", "id")


def _unknown_fact(registry: Registry, key: Any) -> str:
    if key in _RULE_KEYS:
        return (f"unknown fact {key!r}: is `{key}:` indented under `when:`? "
                f"Line it up with `when:`")
    return f"unknown fact {key!r}; {registry.suggest_fact(str(key))}"


def _described(fact: str, definition: FactDef, type_: str) -> str:
    if type_ != definition.type:
        return f"{fact} as {type_}"
    return f"{fact} is {type_}" + (f" ({definition.hint})" if definition.hint else "")


def _mismatch(
    registry: Registry, fact: str, definition: FactDef, op: OperatorDef, expected: Any,
    type_: str,
) -> str:
    """Why `op` cannot test this fact, and the fix: a conversion or the operators that can."""
    if type_ == types.ANY:
        return (f"{fact} declares no type, so only `exists` may test it; declare its type "
                f"where the plugin registers it (@fact(..., type=...))")
    wanted = [t for t in op.types if t != types.LISTS] + (
        ["lists"] if types.LISTS in op.types else [])
    message = f"{op.name} tests {', '.join(wanted)}, but {_described(fact, definition, type_)}"
    target = types.conversion_to(type_, op.types)
    if target is not None:
        return (f"{message}; convert it in the rule: "
                f"`{fact}: {{as: {target}, {op.name}: {types.literal(expected)}}}`")
    usable = sorted(n for n, o in registry.operators.items() if types.accepts(o.types, type_))
    return message + f"; operators for {type_}: {', '.join(usable)}"


def _guarded(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`convert` that passes UNKNOWN through."""

    def guarded(value: Any) -> Any:
        return UNKNOWN if value is UNKNOWN else convert(value)

    return guarded


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
        if isinstance(child, Leaf) and child.op.fn is operators.eq and child.convert is None:
            return _fast_not_eq(child.fact, child.prepared)
        inner = compile_node(child)

        def negate(values: Values) -> bool | None:
            result = inner(values)
            return None if result is None else not result

        return negate
    # Cheapest first: all/any give the same result in any order, and stop sooner.
    children = tuple(compile_node(c) for c in sorted(node.children, key=_cost))
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


def _cost(node: Node) -> int:
    """A rough cost of evaluating `node`: a regular expression costs several comparisons."""
    if isinstance(node, Leaf):
        return 4 if node.op.fn is operators.matches or node.convert is not None else 1
    if isinstance(node, Not):
        return _cost(node.child)
    return sum(_cost(child) for child in node.children)


def _compile_leaf(leaf: Leaf) -> Evaluator:
    name, fn, arg, convert = leaf.fact, leaf.op.fn, leaf.prepared, leaf.convert
    if convert is None:
        # The commonest operators skip a call: values are of the fact's type (resolver).
        fast = _FAST.get(fn)
        if fast is not None:
            return fast(name, arg, types.item_type(leaf.type) is not None)

    def on_value(values: Values) -> bool | None:
        return leaf_result(leaf, values[name])

    return on_value


def leaf_result(leaf: Leaf, actual: Any) -> bool | None:
    """The leaf's result on the fact's value: None when unknown, not convertible, or broken."""
    if leaf.convert is not None:
        actual = leaf.convert(actual)
    if actual is UNKNOWN and not leaf.op.accepts_unknown:
        return None
    try:
        return bool(leaf.op.fn(actual, leaf.prepared))
    except Exception:  # an operator that breaks on a value says nothing: unknown, not false
        return None


def _fast_eq(name: str, arg: Any, is_list: bool) -> Evaluator:
    def eq(values: Values) -> bool | None:
        actual = values[name]
        return None if actual is UNKNOWN else actual == arg

    return eq


def _fast_not_eq(name: str, arg: Any) -> Evaluator:
    """`not: {fact: value}` in one step (unknown stays unknown)."""

    def not_eq(values: Values) -> bool | None:
        actual = values[name]
        return None if actual is UNKNOWN else actual != arg

    return not_eq


def _fast_contains(name: str, arg: Any, is_list: bool) -> Evaluator:
    def contains(values: Values) -> bool | None:
        actual = values[name]
        return None if actual is UNKNOWN else arg in actual

    return contains


def _fast_in(name: str, arg: Any, is_list: bool) -> Evaluator:
    if is_list:
        return lambda values: leaf_fn(operators.in_, values[name], arg)

    def member(values: Values) -> bool | None:
        actual = values[name]
        return None if actual is UNKNOWN else actual in arg

    return member


def _fast_not_in(name: str, arg: Any, is_list: bool) -> Evaluator:
    if is_list:
        return lambda values: leaf_fn(operators.not_in, values[name], arg)

    def not_member(values: Values) -> bool | None:
        actual = values[name]
        return None if actual is UNKNOWN else actual not in arg

    return not_member


def leaf_fn(fn: Callable[[Any, Any], bool], actual: Any, arg: Any) -> bool | None:
    """`fn(actual, arg)`, None when the value is unknown."""
    return None if actual is UNKNOWN else fn(actual, arg)


def _fast_affix(method: Callable[[str, Any], bool]) -> Callable[..., Evaluator]:
    def make(name: str, arg: Any, is_list: bool) -> Evaluator:
        def affix(values: Values) -> bool | None:
            actual = values[name]
            return None if actual is UNKNOWN else method(actual, arg)

        return affix

    return make


def _fast_matches(name: str, arg: Any, is_list: bool) -> Evaluator:
    search = arg.search
    match = arg.match_bytes
    if match is None:  # plain text, or a binding without the direct call

        def searched(values: Values) -> bool | None:
            actual = values[name]
            return None if actual is UNKNOWN else search(actual)

        return searched
    unanchored = operators.UNANCHORED

    def matches(values: Values) -> bool | None:
        actual = values[name]
        if actual is UNKNOWN:
            return None
        data = _utf8(actual)
        return match(unanchored, data, 0, len(data))[0][0] != -1

    return matches


_last_encoded: tuple[str, bytes] = ("", b"")


def _utf8(text: str) -> bytes:
    """`text` in UTF-8; the last one is kept, as rules test one field with many patterns."""
    global _last_encoded
    last = _last_encoded  # one read: another thread may replace the pair, never tear it
    if last[0] is text:
        return last[1]
    data = text.encode("utf-8", "surrogatepass")
    _last_encoded = (text, data)
    return data


def _fast_contains_any(name: str, arg: Any, is_list: bool) -> Evaluator:
    if not is_list:
        return lambda values: leaf_fn(operators.contains_any, values[name], arg)
    wanted = frozenset(arg)

    def contains_any(values: Values) -> bool | None:
        actual = values[name]
        return None if actual is UNKNOWN else not wanted.isdisjoint(actual)

    return contains_any


_FAST: dict[Callable, Callable[[str, Any, bool], Evaluator]] = {
    operators.eq: _fast_eq,
    operators.in_: _fast_in,
    operators.not_in: _fast_not_in,
    operators.starts_with: _fast_affix(str.startswith),
    operators.ends_with: _fast_affix(str.endswith),
    operators.matches: _fast_matches,
    operators.contains_any: _fast_contains_any,
    operators.contains: _fast_contains,
}


def _shown(result: bool | None) -> bool | str:
    return "unknown" if result is None else result


def trace_node(node: Node, get: Getter, notes: dict[str, str]) -> tuple[bool | None, dict]:
    """Evaluate like `compile_node`, returning the result and a JSON-friendly account."""
    if isinstance(node, Leaf):
        actual = get(node.fact)
        result = leaf_result(node, actual)
        entry = {
            "fact": node.fact,
            "actual": to_json(actual),
            "op": node.op.name,
            "expected": to_json(node.expected),
            "result": _shown(result),
        }
        if node.convert is not None:
            entry["as"] = node.type
            converted = node.convert(actual)
            entry["converted"] = to_json(converted)
            if converted is UNKNOWN and actual is not UNKNOWN:
                entry["note"] = f"{types.literal(actual)} is not a {node.type}"
        if actual is UNKNOWN:
            entry["note"] = notes.get(node.fact, "unknown")
        elif node.fact in notes:  # a known fact's source (`rules.values.Sourced`)
            entry["source"] = notes[node.fact]
        elif result is None and "note" not in entry:
            entry["note"] = f"{node.op.name} could not test {types.literal(actual)}"
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
