"""Group contacts: `groups.yaml` beside the rules, where the admin says how to reach each
group the rules' steps name (an email address, a Slack channel of its own, or both),
checked with the rules at file:line.

    groups:
      security: {email: security@corp.example, slack: C0123ABCD}
      payments-owners: {email: payments-owners@corp.example}
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from approver.rules.errors import Problem
from approver.rules.yamlsource import SourceError, load_located

GROUPS_FILE = "groups.yaml"
_GROUP = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/-]{0,63}\Z")
EMAIL = re.compile(r"[^@\s,;<>\"]{1,64}@[A-Za-z0-9.-]{1,189}\.[A-Za-z]{2,63}\Z")
_CHANNEL = re.compile(r"[CG][A-Z0-9]{6,20}\Z")  # a Slack channel's id, not its #name
KEYS = ("email", "slack")


def groups_file(rules_path: str | Path) -> Path | None:
    """The contacts file of a rules folder, if it has one."""
    path = Path(rules_path)
    found = path / GROUPS_FILE if path.is_dir() else path.parent / GROUPS_FILE
    return found if found.is_file() else None


def load(rules_path: str | Path) -> tuple[dict[str, dict], list[Problem]]:
    """Each group's contact ({"email": ..., "slack": ...}, either or both) and the file's
    problems (none: no file)."""
    file = groups_file(rules_path)
    if file is None:
        return {}, []
    name, problems = str(file), []
    try:
        located = load_located(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, SourceError) as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", -1) + 1
        return {}, [Problem(name, line, f"cannot read the group contacts: "
                                        f"{str(exc).splitlines()[0]}")]
    data = located.data
    if not isinstance(data, dict) or set(data) != {"groups"} or \
            not isinstance(data["groups"], dict):
        return {}, [Problem(name, 1, "write `groups:` and under it each group's contact, "
                                     "like `security: {email: security@corp.example}`")]
    contacts = {}
    for group, contact in data["groups"].items():
        where = located.line(("groups", group))
        if not isinstance(group, str) or not _GROUP.match(group):
            problems.append(Problem(name, where, f"{group!r} is not a usable group name"))
        elif not isinstance(contact, dict) or not contact:
            problems.append(Problem(name, where, f"group {group}: write {{email: ADDRESS}}, "
                                                 "{slack: CHANNEL_ID} or both"))
        elif set(contact) - set(KEYS):
            extra = sorted(map(str, set(contact) - set(KEYS)))
            problems.append(Problem(name, where, f"group {group}: unexpected key "
                                    f"{extra[0]!r}; a contact has {', '.join(KEYS)}"))
        elif "email" in contact and not (isinstance(contact["email"], str)
                                         and EMAIL.match(contact["email"])):
            problems.append(Problem(name, located.line(("groups", group, "email")),
                                    f"group {group}: {contact.get('email')!r} is not one "
                                    "email address"))
        elif "slack" in contact and not (isinstance(contact["slack"], str)
                                         and _CHANNEL.match(contact["slack"])):
            problems.append(Problem(name, located.line(("groups", group, "slack")),
                                    f"group {group}: {contact.get('slack')!r} is not a Slack "
                                    "channel id (like C0123ABCD, from the channel's details)"))
        else:
            contacts[group] = dict(contact)
    return contacts, problems
