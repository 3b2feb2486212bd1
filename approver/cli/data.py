"""`approver data`: the maintained domain lists behind `developer.email_disposable` and
`developer.email_free_mail`; a newer list loaded without a release."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from approver import config
from approver.cli.parsing import arg, command, group
from approver.errors import ApproverError
from approver.terminal import printable

SHOWN_PROBLEMS = 10


def _source(args, settings) -> str:
    source = args.source or {"disposable": settings.disposable_list_url,
                             "free_mail": settings.free_mail_list_url}[args.kind]
    if not source:
        variable = f"APPROVER_{args.kind.upper()}_LIST_URL"
        raise ApproverError(f"no list to load: give --from URL-or-file or set {variable}")
    return source


def _shown(source: str) -> str:
    """How a source is named in Redis, traces and output: a URL without its user, password
    or query (a private list's token stays out), a file by its full path."""
    if "://" not in source:
        return str(Path(source).resolve())
    parts = urlsplit(source)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"


def cmd_data_update(args) -> int:
    """Load a newer list into Redis: every worker uses it from its next decision."""
    from approver.signals import datasets
    from approver.state import connection
    from approver.state.signals import Signals

    settings = config.from_env()
    source = _source(args, settings)
    shown = _shown(source)
    domains, problems = datasets.parse(datasets.read_source(source, shown))
    for number, message in problems[:SHOWN_PROBLEMS]:
        print(printable(f"{shown}:{number}: {message}"))
    if problems:
        print(f"{len(problems)} lines are not domains: nothing loaded, the list in force stays")
        return 1
    if not domains:
        raise ApproverError(f"{shown} holds no domain: nothing loaded")
    if len(domains) > datasets.LIMIT_DOMAINS:
        raise ApproverError(f"{shown} holds over {datasets.LIMIT_DOMAINS} domains")
    meta = Signals(connection.connect(settings)).replace_list(args.kind, domains, shown)
    print(printable(f"{args.kind}: {meta['count']} domains from {shown} in force since "
                    f"{meta['loaded_at']}"))
    return 0


def cmd_data_show(args) -> int:
    """Which list is in force for each kind, and the admins' lists beside the rules."""
    from approver.pipeline.signals import lists_folder
    from approver.signals import datasets
    from approver.state import connection
    from approver.state.signals import Signals

    settings = config.from_env()
    store = Signals(connection.connect(settings))
    for kind in datasets.KINDS:
        meta = store.list_meta(kind)
        if meta:
            line = (f"{kind}: {meta['count']} domains loaded from {meta['source']} at "
                    f"{meta['loaded_at']}")
        else:
            packaged = datasets.packaged(kind)
            line = f"{kind}: {len(packaged.domains)} domains, {packaged.label}"
        print(printable(line))
    for name, found in datasets.admin_lists(lists_folder(settings.rules_path)).items():
        print(printable(f"{name}: {len(found.domains)} domains, {found.label}"))
    return 0


def add_commands(sub) -> None:
    """`data update`, `data show`."""
    data = group(sub, "data", "maintained domain lists (disposable, free mail)")
    command(data, "update", cmd_data_update, "load a newer list into Redis, in force at once",
            arg("kind", choices=("disposable", "free_mail")),
            arg("--from", dest="source", metavar="URL_OR_FILE",
                help="an https URL or a file, one domain a line (default: "
                     "APPROVER_DISPOSABLE_LIST_URL or APPROVER_FREE_MAIL_LIST_URL)"))
    command(data, "show", cmd_data_show, "the lists in force and the admins' own")
