"""The layers of the package and the rules between them (pyproject.toml, [tool.importlinter];
docs/architecture.md), checked by `lint-imports` on the tree, and shown to fail on a copy
of the package with an import that breaks one of them; and small modules."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
LONG = 300  # lines: a module longer than this says why in its docstring


def lint_imports(where: Path, *contracts: str) -> subprocess.CompletedProcess:
    """`lint-imports` run in `where` (its pyproject.toml, its `approver`), no cache."""
    args = [str(LINT_IMPORTS), "--no-cache", "--no-logo"]
    for contract in contracts:
        args += ["--contract", contract]
    env = {**os.environ, "PYTHONPATH": str(where)}
    return subprocess.run(args, cwd=where, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def test_the_import_contracts_hold():
    done = lint_imports(ROOT)
    assert done.returncode == 0 and "BROKEN" not in done.stdout, done.stdout + done.stderr
    assert "Contracts: 6 kept, 0 broken." in done.stdout


@pytest.mark.parametrize(("module", "line", "contract", "said"), [
    # An upward import: the rules reaching for the pipeline.
    ("rules/engine.py", "import approver.pipeline.runtime", "layers",
     "approver.rules is not allowed to import approver.pipeline"),
    # The rules doing I/O.
    ("rules/docs.py", "import redis", "rules-pure",
     "approver.rules is not allowed to import redis"),
    # An API client that knows of the rules.
    ("tyk/client.py", "import approver.rules", "clients-apart",
     "approver.tyk is not allowed to import approver.rules"),
    # The web tier calling Tyk itself.
    ("web/hooks.py", "import approver.tyk.client", "web-calls-no-tyk",
     "approver.web is not allowed to import approver.tyk"),
    # A circle between two modules of one package.
    ("rules/values.py", "import approver.rules.testing", "no-circles",
     "No cycles are allowed in approver.rules"),
])
def test_an_import_against_the_layers_fails_the_check(tmp_path, module, line, contract, said):
    shutil.copytree(ROOT / "approver", tmp_path / "approver",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    assert lint_imports(tmp_path, contract).returncode == 0  # the copy holds, as the tree
    with open(tmp_path / "approver" / module, "a", encoding="utf-8") as source:
        source.write(f"\n{line}  # noqa\n")
    done = lint_imports(tmp_path, contract)
    assert done.returncode != 0, done.stdout + done.stderr
    assert "BROKEN" in done.stdout and said in done.stdout, done.stdout + done.stderr


def test_a_module_over_300_lines_says_why_in_its_docstring():
    silent = []
    for path in sorted((ROOT / "approver").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > LONG and f"Over {LONG} lines:" not in (
                ast.get_docstring(ast.parse(text)) or ""):
            silent.append(f"{path.relative_to(ROOT)} ({text.count(chr(10))} lines)")
    assert not silent, (f"split these, or say why they are long in their docstring ('Over "
                        f"{LONG} lines: ...'): " + ", ".join(silent))
