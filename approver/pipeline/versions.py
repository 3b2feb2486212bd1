"""The Tyk versions the portals report, beside the versions the service's evidence covers
(docs/tyk-compatibility.md, versions), for `approver status`."""

from __future__ import annotations

import re

from approver.errors import ApproverError
from approver.pipeline.runtime import Runtime

# Per portal: the major.minor versions the contract corpus and the sandbox are built from,
# and what that evidence is.
EVIDENCE = {
    "classic": (("5.13",), "Dashboard API spec 5.13.0 and doc samples of 2015-2020"),
    "portal": (("1.9", "1.14"), "admin API spec 1.14.0, webhook samples of 1.9.0 and "
                                "recordings of Aug 2023; POST approve/reject from portal-go"),
}


def minor(version: str) -> str | None:
    """`5.3` of `v5.3.1-rc2`; None if the text holds no version."""
    found = re.search(r"(\d+)\.(\d+)", version)
    return f"{int(found[1])}.{int(found[2])}" if found else None


def report(rt: Runtime) -> dict[str, dict]:
    """Per portal: the version it reports (or None), whether it is one the evidence covers
    (None when unknown), the evidence, and a note when the version could not be had."""
    found = {}
    for name, source in rt.sources.items():
        tested, evidence = EVIDENCE.get(name, ((), "none"))
        note = None
        read = getattr(source, "version", None)  # a portal that exposes none has none
        try:
            version = read() if read else None
        except ApproverError as exc:
            version, note = None, f"could not be read: {exc}"[:200]
        if version is None and note is None:
            note = "not exposed by Tyk"
        found[name] = {"version": version,
                       "tested": None if version is None else minor(version) in tested,
                       "evidence": evidence, "note": note}
    return found


def describe(name: str, seen: dict) -> str:
    """One line of `approver status` for a portal's version."""
    if seen["version"] is None:
        said = f"version {seen['note']}"
    else:
        said = f"version {seen['version']}, " + ("tested" if seen["tested"] else "untested")
    return f"tyk {name}: {said} (evidence: {seen['evidence']})"
