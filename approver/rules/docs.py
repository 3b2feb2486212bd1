"""The rule vocabulary as Markdown (the CLI writes docs/rules.md from it)."""

from __future__ import annotations

from approver.rules.registry import Registry, default_registry


def _cell(text: str) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def vocabulary_markdown(registry: Registry | None = None) -> str:
    """Every fact (name, type, description) and operator (name, description) as Markdown tables."""
    registry = registry if registry is not None else default_registry()
    lines = [
        "## Facts",
        "",
        "| fact | type | description |",
        "|---|---|---|",
    ]
    for definition in sorted(registry.facts.values(), key=lambda d: d.display_name):
        description = definition.description + (" (plugin)" if definition.plugin else "")
        lines.append(
            f"| `{definition.display_name}` | {_cell(definition.type)} | {_cell(description)} |"
        )
    lines += ["", "## Operators", "", "| operator | description |", "|---|---|"]
    for name in sorted(registry.operators):
        lines.append(f"| `{name}` | {_cell(registry.operators[name].description)} |")
    lines += [
        "",
        "A bare value means `eq`; a mapping may hold several operators, all of which must hold.",
        "",
        "## Combinators",
        "",
        "| combinator | holds when |",
        "|---|---|",
        "| `all` | every condition in the list holds (several keys in one mapping mean `all`) |",
        "| `any` | at least one condition in the list holds |",
        "| `not` | the condition does not hold |",
        "",
        "A fact that could not be had is *unknown*: it satisfies no condition but "
        "`exists: false`, `not` keeps it unknown, and a rule matches only when its condition "
        "holds, so the default (`review`) applies.",
        "",
    ]
    return "\n".join(lines)
