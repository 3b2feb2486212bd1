"""The README's first command: `approver demo --once` decides the samples and exits."""

import subprocess
import sys

from tests.conftest import ROOT


def test_demo_once_approves_denies_and_leaves_for_review():
    result = subprocess.run(
        [sys.executable, "-m", "approver", "demo", "--once", "--port", "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert any(line.startswith("alice@acme.partner.example") and "APPROVE" in line
               and "(applied in Tyk)" in line for line in lines)
    assert any(line.startswith("bob@mailinator.com") and "DENY" in line for line in lines)
    assert any(line.startswith("carol@gmail.com") and "REVIEW" in line for line in lines)
