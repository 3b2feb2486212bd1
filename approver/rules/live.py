"""`LiveRules`: the current RuleSet, reloaded on change, never replaced by a bad edit."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from approver.rules.errors import Problem, RulesError
from approver.rules.loader import load_rules, rule_files
from approver.rules.registry import Registry
from approver.rules.ruleset import RuleSet

log = logging.getLogger(__name__)

Signature = tuple[tuple[str, int, int], ...]


def signature(path: str | Path) -> Signature:
    """Names, mtimes and sizes of the rule files at `path` (a missing file counts as -1, -1)."""
    entries = []
    for file in rule_files(path):
        try:
            stat = file.stat()
        except OSError:
            entries.append((str(file), -1, -1))
        else:
            entries.append((str(file), stat.st_mtime_ns, stat.st_size))
    return tuple(entries)


class LiveRules:
    """Hands out the current RuleSet; checks the files at most every `check_interval` seconds."""

    def __init__(
        self,
        path: str | Path,
        check_interval: float = 2.0,
        registry: Registry | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.path = Path(path)
        self.check_interval = check_interval
        self.registry = registry
        self.reload_failures = 0
        self.last_error: list[Problem] | None = None
        self._clock = clock
        self._lock = threading.Lock()
        # Signature first: an edit made while loading is then seen at the next check.
        self._signature = signature(self.path)
        self._ruleset = load_rules(self.path, registry)  # the first failure raises
        self._checked = clock()

    def current(self) -> RuleSet:
        """The latest good RuleSet, reloading first if the files changed since the last check."""
        if self._clock() - self._checked >= self.check_interval:
            with self._lock:
                if self._clock() - self._checked >= self.check_interval:
                    self._check()
        return self._ruleset

    def reload(self) -> RuleSet:
        """Check the files now, whatever the interval."""
        with self._lock:
            self._check()
        return self._ruleset

    def _check(self) -> None:
        self._checked = self._clock()
        current = signature(self.path)
        if current == self._signature:
            return
        # Remember it even when the load fails, so one bad edit is reported once.
        self._signature = current
        try:
            ruleset = load_rules(self.path, self.registry)
        except RulesError as exc:
            self.reload_failures += 1
            self.last_error = exc.problems
            log.warning(
                "rules at %s not reloaded, keeping revision %s:\n%s",
                self.path,
                self._ruleset.revision,
                "\n".join(str(p) for p in exc.problems),
            )
            return
        if ruleset.revision != self._ruleset.revision:
            log.info("rules reloaded: revision %s -> %s", self._ruleset.revision, ruleset.revision)
        self._ruleset = ruleset
        self.last_error = None
