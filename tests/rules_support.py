"""Helpers shared by the rules tests."""

import textwrap


def write(path, text):
    """Write dedented YAML to `path` (making its folder) and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path
