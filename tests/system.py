"""Tests that need a program the Python packages do not bring (Chromium, a redis-server
built with TLS): on a developer's machine without it they skip, naming the Debian packages
to install; in CI (`CI` set, as `.ci/run` sets it, which installs them) they fail instead."""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    """Whether this run is CI's, where every system program must be there."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require(present: bool, what: str, packages: str) -> None:
    """Go on if `present`; else skip (fail in CI) saying what is missing and what to install."""
    if present:
        return
    why = f"{what}: `apt-get install {packages}`"
    if in_ci():
        pytest.fail(f"CI needs {why} (.ci/run installs it)", pytrace=False)
    pytest.skip(f"needs {why}")
