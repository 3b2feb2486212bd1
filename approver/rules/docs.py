"""The rule vocabulary as Markdown (the CLI writes it into docs/rules.md)."""

from __future__ import annotations

from approver.rules.registry import Registry
from approver.rules.types import ANY, LISTS
from approver.rules.vocabulary import default_registry


def _cell(text: str) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def vocabulary_markdown(registry: Registry | None = None) -> str:
    """Every fact (name, type, description) and operator (name, description) as Markdown tables."""
    registry = registry if registry is not None else default_registry()
    lines = [
        "### Facts",
        "",
        "| fact | type | description |",
        "|---|---|---|",
    ]
    for definition in sorted(registry.facts.values(), key=lambda d: d.display_name):
        description = definition.description + (" (plugin)" if definition.plugin else "")
        lines.append(
            f"| `{definition.display_name}` | {_cell(definition.type)} | {_cell(description)} |"
        )
    lines += ["", "### Operators", "", "| operator | tests | description |", "|---|---|---|"]
    for name in sorted(registry.operators):
        op = registry.operators[name]
        tested = ", ".join("lists" if t == LISTS else "anything" if t == ANY else t
                           for t in op.types)
        lines.append(f"| `{name}` | {tested} | {_cell(op.description)} |")
    lines += [
        "",
        "A bare value means `eq`; a mapping may hold several operators, all of which must hold.",
        "",
        "### Combinators",
        "",
        "| combinator | holds when |",
        "|---|---|",
        "| `all` | every condition in the list holds (several keys in one mapping mean `all`) |",
        "| `any` | at least one condition in the list holds |",
        "| `not` | the condition does not hold |",
        "",
        "A fact that could not be had, or whose value is not of its type, is *unknown*: "
        "only `exists` tests it, `not` keeps it unknown, and a rule whose condition is "
        "unknown stops the evaluation with `review` (or its `on_unknown`).",
        "",
    ]
    return "\n".join(lines)


BEGIN = "<!-- vocabulary: written by `approver rules docs` from approver/rules/; edit there -->"
END = "<!-- end of the vocabulary -->"


def with_vocabulary(document: str, vocabulary: str) -> str:
    """`document` with the part between BEGIN and END replaced (appended if it has none)."""
    block = f"{BEGIN}\n\n{vocabulary}\n{END}\n"
    if BEGIN in document and END in document:
        head, rest = document.split(BEGIN, 1)
        return head + block + rest.split(END, 1)[1].lstrip("\n")
    return document + ("\n" if document else "") + block
