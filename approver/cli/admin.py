"""`approver admin`: local console accounts."""

from __future__ import annotations

import sys

from approver.cli.parsing import arg, command, group


def cmd_admin_add(args) -> int:
    """Add a local console account (or set its password): prompted, or one line of stdin."""
    import getpass

    from approver.pipeline import runtime
    from approver.state import accounts

    accounts.check_name(args.name)
    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            print("approver: the passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    new = accounts.add(runtime.current().store, args.name, password)
    print(f"{'added' if new else 'changed the password of'} console account {args.name}")
    return 0

def cmd_admin_remove(args) -> int:
    """Remove a local console account and end its sessions."""
    from approver.pipeline import runtime
    from approver.state import accounts

    if not accounts.remove(runtime.current().store, args.name):
        print(f"approver: no console account {args.name}", file=sys.stderr)
        return 1
    print(f"removed console account {args.name}")
    return 0

def cmd_admin_list(args) -> int:
    """List the local console accounts."""
    from approver.pipeline import runtime
    from approver.state import accounts

    for name in accounts.names(runtime.current().store):
        print(name)
    return 0


def add_commands(sub) -> None:
    """`admin add`, `remove`, `list`."""
    asub = group(sub, "admin", "local console accounts")
    command(asub, "add", cmd_admin_add, "add an account (password prompted or from stdin)",
            arg("name"))
    command(asub, "remove", cmd_admin_remove, "remove an account and end its sessions",
            arg("name"))
    command(asub, "list", cmd_admin_list, "the accounts' names")
