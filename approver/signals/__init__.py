"""Signals nobody should keep by hand: what DNS, RDAP and maintained domain lists say about
an email domain. Clients only: the pipeline caches their answers (state/) and hands them to
the rules as facts (`pipeline/signals.py`, `rules/signals.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from approver.errors import ApproverError


class Unavailable(ApproverError):
    """A signal could not be had (down, slow, or an answer that makes no sense): unknown."""


@dataclass(frozen=True)
class Answer:
    """A signal's value, where it came from (said in the trace), and how long it may be kept."""

    value: Any
    source: str
    ttl: int = 0
