"""YAML loading that remembers the line of every key and list item."""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Path = tuple[Any, ...]


class SourceError(yaml.YAMLError):
    """YAML that parses but cannot be plain rule data; `.line` says where."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line


class Located:
    """Parsed YAML data with `line(path)`: the 1-based line of the key or item at `path`."""

    def __init__(self, data: Any, lines: dict[Path, int], duplicates: list[tuple[int, str]]):
        self.data = data
        self.lines = lines
        self.duplicates = duplicates

    def line(self, path: Path | Any) -> int:
        """Line of the deepest known prefix of `path` (1 when nothing is known)."""
        path = tuple(path)
        while path not in self.lines and path:
            path = path[:-1]
        return self.lines.get(path, 1)


def load_located(text: str) -> Located:
    """Parse one YAML document safely; raises `yaml.YAMLError` on a syntax error."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        lines: dict[Path, int] = {}
        duplicates: list[tuple[int, str]] = []
        data = None if node is None else _build(loader, node, (), lines, duplicates, set())
    finally:
        loader.dispose()
    return Located(data, lines, duplicates)


def _build(
    loader: yaml.SafeLoader,
    node: Node,
    path: Path,
    lines: dict[Path, int],
    duplicates: list[tuple[int, str]],
    active: set[int],
) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if id(node) in active:  # an alias cycle (`&a [*a]`): plain data cannot hold it
        raise SourceError(node.start_mark.line + 1, "recursive alias")
    if isinstance(node, ScalarNode):
        return loader.construct_object(node, deep=True)
    active.add(id(node))
    try:
        if isinstance(node, SequenceNode):
            out_list = []
            for index, item in enumerate(node.value):
                lines[(*path, index)] = item.start_mark.line + 1
                out_list.append(_build(loader, item, (*path, index), lines, duplicates, active))
            return out_list
        if isinstance(node, MappingNode):
            loader.flatten_mapping(node)  # `<<:` merge keys
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = loader.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                if not isinstance(key, str | int | float | bool) and key is not None:
                    raise SourceError(line, "a mapping key must be a plain value")
                if key in out:
                    duplicates.append((line, f"duplicate key {key!r}"))
                lines[(*path, key)] = line
                out[key] = _build(loader, value_node, (*path, key), lines, duplicates, active)
            return out
    finally:
        active.discard(id(node))
    return loader.construct_object(node, deep=True)
