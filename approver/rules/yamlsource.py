"""YAML loading that remembers the line of every key and list item."""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

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


class _PlainLoader(yaml.SafeLoader):
    """SafeLoader refusing anchors and aliases.

    An alias re-uses a node, so a few hundred bytes of nested aliases expand to gigabytes
    (a "billion laughs"); rule files gain nothing from them, so none is accepted.
    """

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise SourceError(
                event.start_mark.line + 1,
                "YAML anchors and aliases (&name, *name, <<: *name) are not allowed in rule "
                "files; write the value out in full",
            )
        return super().compose_node(parent, index)


def load_located(text: str) -> Located:
    """Parse one YAML document safely; raises `yaml.YAMLError` on a syntax error."""
    loader = _PlainLoader(text)
    try:
        node = loader.get_single_node()
        lines: dict[Path, int] = {}
        duplicates: list[tuple[int, str]] = []
        data = None if node is None else _build(loader, node, (), lines, duplicates)
    finally:
        loader.dispose()
    return Located(data, lines, duplicates)


def _build(
    loader: yaml.SafeLoader,
    node: Node,
    path: Path,
    lines: dict[Path, int],
    duplicates: list[tuple[int, str]],
) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, SequenceNode):
        out_list = []
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            out_list.append(_build(loader, item, (*path, index), lines, duplicates))
        return out_list
    if isinstance(node, MappingNode):
        loader.flatten_mapping(node)  # `<<: {...}` merge keys (inline: aliases are refused)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise SourceError(line, "a mapping key must be a plain value")
            if key in out:
                duplicates.append((line, f"duplicate key {key!r}"))
            lines[(*path, key)] = line
            out[key] = _build(loader, value_node, (*path, key), lines, duplicates)
        return out
    return loader.construct_object(node, deep=True)
