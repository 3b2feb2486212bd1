"""Helpers shared by the rules tests."""

import textwrap


def write(path, text):
    """Write dedented YAML to `path` (making its folder) and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def load_generated(document: dict):
    """Load a generated rules document (via JSON, so shared leaves are not YAML aliases)."""
    import json
    import tempfile
    from pathlib import Path

    import yaml

    from approver.rules import load_rules

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.yaml"
        path.write_text(yaml.safe_dump(json.loads(json.dumps(document))))
        return load_rules(path)
