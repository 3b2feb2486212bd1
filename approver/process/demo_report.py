"""What the demo prints: each sample's decision, where its facts came from, and how to
point the command line at the demo."""

from __future__ import annotations

import shlex
import time

from approver.errors import ApproverError
from approver.state import IN_REVIEW, SETTLED_STATES, Store
from approver.terminal import printable

PORTAL_LABELS = {"classic": "classic portal", "portal": "new portal"}


def label(email: str, source: str, portal: str) -> str:
    """How a sample is named in the report: its email, and its portal when both run."""
    return email if portal == "classic" else f"{email} ({PORTAL_LABELS[source]})"


def describe(entry: dict) -> str:
    if entry["event"] == "failed":
        return printable(f"{entry['request_id']}: NOT DECIDED: {entry.get('error')}")
    rule = entry.get("decided_by") or entry.get("rule") or "default"
    where = PORTAL_LABELS.get(entry.get("portal") or "classic", entry.get("portal"))
    return printable(f"{entry['request_id']} ({where}): {entry['outcome'].upper():<7} "
                     f"by {rule:<24} {entry['reason']}")


def sources(state: dict) -> list[str]:
    """Where the deciding rule's facts came from, as its trace says (a list, DNS, RDAP)."""
    found = []
    for entry in state.get("trace") or []:
        if entry.get("rule") == state.get("rule"):
            stack = list(entry.get("conditions") or [])
            while stack:
                condition = stack.pop(0)
                stack[:0] = condition.get("all") or condition.get("any") or []
                if condition.get("source") and condition["source"] not in found:
                    found.append(f"{condition['fact']}: {condition['source']}")
    return found


def report(st: Store, pending: dict[str, str], timeout: float = 30.0) -> None:
    """Print each sample's decision once it is final."""
    deadline = time.monotonic() + timeout
    width = max([28, *map(len, pending.values())])
    while pending and time.monotonic() < deadline:
        for request_id in list(pending):
            state = st.state(request_id)
            if state and state["state"] in SETTLED_STATES:
                applied = " (applied in Tyk)" if state["outcome"] in ("approve", "deny") else (
                    " (in the review console's inbox)" if state["state"] == IN_REVIEW
                    else "")
                label = pending.pop(request_id)
                print(printable(f"{label:<{width}} {state['outcome'].upper():<7} rule "
                                f"{state.get('rule') or 'default'}: {state['reason']}{applied}"))
                for source in sources(state):
                    print(printable(f"{'':<{width}} from {source}"))
        time.sleep(0.1)
    if pending:
        raise ApproverError(f"not decided within {timeout:.0f}s: {', '.join(pending)}")


def cli_exports(env: dict) -> str:
    """The `export` line that points `approver` commands at this demo."""
    names = ("APPROVER_REDIS_URL", "APPROVER_DASHBOARD_URL", "APPROVER_DASHBOARD_SECRET",
             "APPROVER_PORTAL_URL", "APPROVER_PORTAL_TOKEN", "APPROVER_RULES")
    return "export " + " ".join(f"{n}={shlex.quote(env[n])}" for n in names if env.get(n))
