"""`approver billing`: a developer's billing state."""

from __future__ import annotations

import json


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
    billing = sub.add_parser("billing", help="billing state")
    bsub = billing.add_subparsers(dest="billing_command", required=True)
    bshow = bsub.add_parser("show", help="one developer's billing state")
    bshow.add_argument("developer", help="Tyk developer id")
    bshow.set_defaults(func=cmd_billing_show)
