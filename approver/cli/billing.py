"""`approver billing`: a developer's billing state."""

from __future__ import annotations

import json

from approver.cli.parsing import arg, command, group


def cmd_billing_show(args) -> int:
    """A developer's billing state, waiting requests and keys this service approved."""
    from approver.pipeline import runtime

    rt = runtime.current()
    store = rt.store
    print(json.dumps({
        "developer_id": args.developer,
        "billing": rt.billing.get(args.developer),
        "waiting": store.waiting_for(args.developer),
        "approved_keys": store.approved_keys(args.developer),
    }, indent=2, sort_keys=True))
    return 0


def add_commands(sub) -> None:
    """`billing show`."""
    command(group(sub, "billing", "billing state"), "show", cmd_billing_show,
            "one developer's billing state", arg("developer", help="Tyk developer id"))
