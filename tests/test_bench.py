"""`python -m bench --quick` runs every phase of `make bench` end to end and measures what it
says it measures; no figure here is compared with a target (the machines are shared)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_the_quick_benchmark_runs_every_phase_and_its_figures_are_sane():
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "--no-doc"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, check=False)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    # Every webhook of the latency phase was decided after it was sent, not before by
    # a reconciler pass (which would make the latency negative).
    applied = re.search(r"(\d+) of (\d+) applied, (\d+) not answered 202", out)
    assert applied and applied[1] == applied[2] and applied[3] == "0", out[-3000:]
    latency = re.search(r"webhook sent → applied.*?\| ([-\d.,]+) / ([-\d.,]+) / ([-\d.,]+) \|",
                        out)
    assert latency and all(float(v.replace(",", "")) > 0 for v in latency.groups()), out[-3000:]
    # The backlog rows: every request settled (decided, or in the review inbox).
    for row in ("1 worker(s): drain s", "2 worker(s): drain s", "bytes per decided request",
                "reconciler pass at", "ceiling 50 calls/s"):
        assert row in out, out[-3000:]


def test_the_cost_proxy_counts_a_decisions_commands_and_cpu_against_a_no_op_jobs():
    done = subprocess.run([sys.executable, "-m", "bench.cost", "--n", "20", "--rounds", "1",
                           "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    found = json.loads(done.stdout)
    decision, noop = found["decision"], found["noop"]
    for kind in (decision, noop):
        assert kind["redis_commands"] == pytest.approx(sum(kind["redis_by_command"].values()))
        assert kind["cpu_ms"] > 0
    # Every decision was applied (else the run fails) and logged twice, decided then
    # applied: the log's two entries are the only XADDs of a job that keeps no result.
    assert decision["redis_by_command"]["xadd"] == 2
    # A decision does what a no-op job does and more: its lock, record and log.
    assert decision["redis_commands"] > noop["redis_commands"]
