"""What a worker reports of the portals and the rules it sees, for the web tier's /readyz,
/metrics and `approver status` (stored by `state.health`)."""

from __future__ import annotations

from approver.errors import ApproverError
from approver.pipeline.runtime import Runtime
from approver.tyk.permissions import grant


def publish_health(rt: Runtime) -> dict:
    """Check the Dashboard and the rules now, and record what was seen for the web tier."""
    problems = []
    org = None
    for name, source in rt.sources.items():
        try:
            org = source.ping() or org
        except ApproverError as exc:
            problems.append(f"{name}: {exc}")
    # Calls refused for lack of rights lately (writes cannot be tried out by a ping).
    problems += [f"{call} refused (HTTP 403) at {at}: {_right(call)}"
                 for call, at in rt.store.refusals().items()]
    dashboard = "; ".join(problems)[:300] or ("ok" if rt.sources else "no portal configured")
    rules = None
    try:
        rules = rt.rules  # loads the rules the first time: a broken file raises here
        revision = rules.current().revision
    except ApproverError as exc:
        revision = ""
        error = str(exc)[:300]
    else:
        error = "; ".join(str(p) for p in (rules.last_error or []))[:300]
    fields = {"dashboard": dashboard, "org_id": org or rt.store.served_org(),
              "rules_revision": revision,
              "rules_reload_failures": rules.reload_failures if rules else 0,
              "rules_error": error}
    rt.store.publish_health(**fields)
    return fields


def _right(call: str) -> str:
    """What a refused call (`"<portal>: <METHOD> <path>"`) needs, said for an operator."""
    portal, _, rest = call.partition(": ")
    method, _, path = rest.partition(" ")
    needed = grant(method, path) if portal == "classic" else None
    return (f"the Dashboard API user lacks the right {needed}" if needed
            else "the API token lacks a right this call needs")
