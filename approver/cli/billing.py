"""`approver billing`: a developer's billing state."""

from __future__ import annotations

import json

from approver.cli.parsing import arg, command, group
from approver.errors import ApproverError


def cmd_billing_show(args) -> int:
    """A developer's billing state, waiting requests and keys this service approved."""
    from approver.pipeline import runtime

    rt = runtime.current()
    store = rt.store
    developer = _developer_id(rt, args.developer)
    print(json.dumps({
        "developer_id": developer,
        "billing": rt.billing.get(developer),
        "waiting": store.waiting_for(developer),
        "approved_keys": store.approved_keys(developer),
    }, indent=2, sort_keys=True))
    return 0


def _developer_id(rt, given: str) -> str:
    """The developer id `given` is, or the one the portals know by that email."""
    if "@" not in given:
        return given
    if not rt.sources:
        raise ApproverError(f"{given} is an email, and no portal is configured to look it up "
                            "(APPROVER_DASHBOARD_URL and APPROVER_DASHBOARD_SECRET, or "
                            "APPROVER_PORTAL_URL): give the developer id instead")
    for source in rt.sources.values():
        found = source.developer_id_by_email(given)
        if found:
            return found
    raise ApproverError(f"no developer has the email {given} in the portal: check it, or "
                        "give the developer id")


def add_commands(sub) -> None:
    """`billing show`."""
    command(group(sub, "billing", "billing state"), "show", cmd_billing_show,
            "one developer's billing state",
            arg("developer", help="Tyk developer id, or the developer's email"))
