"""Rule-file problems and the error that carries them."""

from __future__ import annotations

from dataclasses import dataclass

from approver.errors import ApproverError


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a rule or test file, at a line (1-based; 0 when not known)."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class RulesError(ApproverError):
    """Rule files could not be loaded; `.problems` lists every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems) or "invalid rules")
