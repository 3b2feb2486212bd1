"""`approver admin`: local console accounts, and ending anyone's console sessions."""

from __future__ import annotations

import sys

from approver.cli.parsing import arg, command, group


def _sessions(count: int) -> str:
    return f"{count} session{'' if count == 1 else 's'}"


def cmd_admin_add(args) -> int:
    """Add a local console account, or (asked, or `--reset`) change its password: prompted,
    or one line of stdin."""
    import getpass

    from approver.pipeline import runtime
    from approver.state import accounts

    store = runtime.current().store
    accounts.check_name(args.name)
    groups = tuple(args.group or ())
    for name in groups:
        accounts.check_group(name)
    accounts.check_email(args.email or "")
    interactive = sys.stdin.isatty()
    if accounts.exists(store, args.name) and not args.reset and (
            args.email is not None or args.group):
        accounts.set_profile(store, args.name, args.email, groups if args.group else None)
        shown = accounts.profile(store, args.name)
        print(f"changed console account {args.name}: email {shown['email'] or '-'}, groups "
              f"{', '.join(shown['groups']) or '-'} (its password and sessions unchanged)")
        return 0
    if accounts.exists(store, args.name) and not args.reset:
        question = (f"console account {args.name} exists: change its password and end its "
                    "sessions? [y/N] ")
        if not interactive or input(question).strip().lower() not in ("y", "yes"):
            print(f"approver: console account {args.name} exists; left as it was (`approver "
                  f"admin add --reset {args.name}` changes its password)", file=sys.stderr)
            return 1
    if interactive:
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            print("approver: the passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    ended = accounts.add(store, args.name, password, args.email or "", groups)
    if ended is None:
        print(f"added console account {args.name}")
    else:
        print(f"changed the password of console account {args.name}; ended its "
              f"{_sessions(ended)}")
    return 0


def cmd_admin_remove(args) -> int:
    """Remove a local console account, or end the sessions of anyone signed in another way."""
    from approver.pipeline import runtime
    from approver.state import accounts

    removed, ended = accounts.remove(runtime.current().store, args.name)
    if removed:
        print(f"removed console account {args.name}; ended its {_sessions(ended)}")
    elif ended:
        print(f"ended {_sessions(ended)} of {args.name} (to keep them out, also take them off "
              "the single sign-on allow-lists or the proxy)")
    else:
        print(f"approver: no console account or session of {args.name}", file=sys.stderr)
        return 1
    return 0


def cmd_admin_list(args) -> int:
    """List the local console accounts: name, email, groups."""
    from approver.pipeline import runtime
    from approver.state import accounts

    store = runtime.current().store
    rows = [accounts.profile(store, name) for name in accounts.names(store)]
    rows = [r for r in rows if r]
    if not rows:
        return 0
    width = max(len("NAME"), *(len(r["name"]) for r in rows))
    mail = max(len("EMAIL"), *(len(r["email"] or "-") for r in rows))
    print(f"{'NAME':<{width}}  {'EMAIL':<{mail}}  GROUPS")
    for row in rows:
        print(f"{row['name']:<{width}}  {row['email'] or '-':<{mail}}  "
              f"{', '.join(row['groups']) or '-'}")
    return 0


def add_commands(sub) -> None:
    """`admin add`, `remove`, `list`."""
    asub = group(sub, "admin", "local console accounts")
    command(asub, "add", cmd_admin_add, "add an account (password prompted or from stdin)",
            arg("name"),
            arg("--email", help="the person's email address (nobody approves a request of "
                                "their own address)"),
            arg("--group", action="append", metavar="GROUP",
                help="a group the person belongs to (repeat for several); on an existing "
                     "account, --email and --group change those alone"),
            arg("--reset", action="store_true",
                help="change the password of an existing account (ends its sessions)"))
    command(asub, "remove", cmd_admin_remove,
            "remove an account and end its sessions; `oidc:EMAIL` or `proxy:NAME` ends "
            "that person's sessions", arg("name"))
    command(asub, "list", cmd_admin_list, "the accounts: name, email, groups")
