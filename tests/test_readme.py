"""The README's settings and commands tables, and the docs, against the code they describe.

Whoever adds a setting or a command (or a flag) gets a failure here naming exactly what to
write where: a row in the README's settings table, or the flag in its command's row.
"""

from __future__ import annotations

import argparse
import ast
import re

from approver import cli
from tests.conftest import ROOT

README = ROOT / "README.md"
SETTING = re.compile(r"APPROVER_[A-Z0-9_]*[A-Z0-9]\b(?!\*)")
FLAG = re.compile(r"--[a-z][a-z0-9-]*")


def settings_read() -> dict[str, str]:
    """Every APPROVER_* variable the package names in its code -> the first file naming it.

    String constants only (an environment lookup, a name passed to a checker, a variable
    a command sets for its children), not names quoted inside messages."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "approver").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and SETTING.fullmatch(node.value):
                found.setdefault(node.value, str(path.relative_to(ROOT)))
    return found


def table(heading: str) -> list[list[str]]:
    """The rows (cells, without the header) of the first table after `heading`."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n{heading}\n")
    rows, in_table = [], False
    for line in text[start:].splitlines()[2:]:
        if line.startswith("|"):
            in_table = True
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            if not set("".join(cells)) <= set("-: "):
                rows.append(cells)
        elif in_table:
            break
    return rows[1:]  # the header row


def documented_settings() -> set[str]:
    return {name for cells in table("### Settings") for name in SETTING.findall(cells[0])}


def test_every_setting_the_code_reads_is_in_the_readme():
    missing = {n: where for n, where in settings_read().items() if n not in documented_settings()}
    assert not missing, "README.md, table under '### Settings': add a row for " + "; ".join(
        f"{name} (read in {where}): | `{name}` | what it sets | its default |"
        for name, where in sorted(missing.items()))


def test_every_setting_in_the_readme_is_read_by_the_code():
    extra = documented_settings() - set(settings_read())
    assert not extra, (f"README.md, table under '### Settings': {', '.join(sorted(extra))} "
                       "is read nowhere in approver/ (read it in approver/config.py, or "
                       "remove the row)")


def test_docs_name_only_settings_that_exist():
    known = set(settings_read())
    wrong = []
    for path in [README, *sorted((ROOT / "docs").rglob("*.md")),
                 *sorted((ROOT / "docs").rglob("*.py"))]:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            wrong += [f"{path.relative_to(ROOT)}:{number}: {name}"
                      for name in SETTING.findall(line) if name not in known]
    assert not wrong, "settings that do not exist (a typo?): " + "; ".join(wrong)


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command words, {flag: how it is written with its value}) for the parser and every
    subcommand under it."""
    flags, children = {}, []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            children += [((*path, name), sub) for name, sub in action.choices.items()]
        elif action.option_strings and not isinstance(action, argparse._HelpAction):
            flag = max(action.option_strings, key=len)
            value = "" if action.nargs == 0 else f" {action.metavar or action.dest.upper()}"
            flags[flag] = f"[{flag}{value}]"
    yield path, flags, bool(children)
    for child_path, child in children:
        yield from commands(child, child_path)


def readme_commands(known: set[tuple[str, ...]]) -> dict[tuple[str, ...], set[str]]:
    """Command words -> the flags the README's commands table shows for that command.

    A row may name several commands: `approver decisions list [--failed]` / `show ID` (a
    command beside the one before) / `--file F` (more flags of the one before)."""
    found: dict[tuple[str, ...], set[str]] = {}
    for cells in table("## Commands"):
        path: tuple[str, ...] = ()
        for segment in re.findall(r"`([^`]+)`", cells[0]):
            words = segment.replace("\\|", " ").split()
            if words[0] == "approver":
                path, words = (), words[1:]
            elif not words[0].startswith("-"):
                path = path[:-1]
            else:
                words = []
            while words and (*path, words[0]) in known:
                path, words = (*path, words[0]), words[1:]
            found.setdefault(path, set()).update(FLAG.findall(segment))
    return found


def test_the_readme_commands_table_shows_every_command_and_flag():
    parsed = list(commands(cli.parser()))
    shown = readme_commands({path for path, _, _ in parsed})
    problems = []
    for path, flags, has_subcommands in parsed:
        name = " ".join(("approver", *path))
        if path not in shown:
            if not has_subcommands:
                usage = " ".join([name, *flags.values()])
                problems.append(f"no row for `{name}`: add | `{usage}` | what it does |")
            elif flags:
                usage = " ".join([name, *flags.values(), "COMMAND"])
                problems.append(f"no row shows `{name}`'s {', '.join(flags)}: add | "
                                f"`{usage}` | options every command takes |")
            continue
        lacking = [written for flag, written in flags.items() if flag not in shown[path]]
        if lacking:
            problems.append(f"`{name}` lacks {' '.join(lacking)}: add to its row")
        unknown = shown[path] - set(flags)
        if unknown:
            problems.append(f"`{name}` shows {', '.join(sorted(unknown))}, which it does "
                            "not take (approver/cli/, parser())")
    assert not problems, "README.md, table under '## Commands': " + "; ".join(problems)


def test_the_billing_event_example_is_accepted_by_the_service(settings, monkeypatch, capsys):
    import base64
    import runpy
    from types import SimpleNamespace

    import requests

    from approver.web import create_app

    secret = "whsec_" + base64.b64encode(b"example-billing-secret-0123456789").decode()
    client = create_app(settings.with_(billing_secrets=(secret,))).test_client()

    def post(url, data, headers, timeout):
        answer = client.post(url.removeprefix("https://approver.example.com"), data=data,
                             headers=headers)
        return SimpleNamespace(status_code=answer.status_code, text=answer.get_data(True))

    monkeypatch.setattr(requests, "post", post)
    monkeypatch.setenv("APPROVER_BILLING_SECRETS", secret)
    example = runpy.run_path(str(ROOT / "docs" / "examples" / "send_billing_event.py"))
    assert example["main"]("https://approver.example.com", "billing.status",
                           "64b0000000000000000000a4", "active", "pro") == 0
    assert capsys.readouterr().out.startswith("202 ")


def test_the_compose_files_curl_makes_a_key_request(sandbox):
    import json

    import requests

    from tests.conftest import SANDBOX_SECRET

    text = (ROOT / "deploy" / "docker-compose.yml").read_text(encoding="utf-8")
    command = re.search(r"#\s+curl -X POST \S+/_sandbox/key-requests(.*?)\n#\s*\n", text,
                        re.S)[1]
    body = json.loads(re.search(r"-d '([^']+)'", command.replace("\\\n#", ""))[1])
    made = requests.post(f"{sandbox.url}/_sandbox/key-requests", json=body,
                         headers={"authorization": SANDBOX_SECRET}, timeout=10)
    assert made.status_code == 201, made.text
    assert made.json()["apply_policies"] == body["policies"]


def outcome_table(path) -> list[list[str]]:
    """The rows of the first table whose header starts with `| outcome | in Tyk |`."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| outcome | in Tyk |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.split("|")[1:-1]])
    return rows


def test_docs_say_what_each_outcome_does_as_the_readme_does():
    readme = outcome_table(README)
    assert [row[0] for row in readme] == ["approve", "deny", "review", "wait"]
    assert outcome_table(ROOT / "docs" / "rules.md") == readme, (
        "docs/rules.md's outcome table differs from the README's: copy the README's rows")


VALUE = re.compile(r"(--[a-z][a-z0-9-]*) ([A-Z][A-Za-z0-9_.:]*)")


def named_values(parser, path=()):
    """((command words, flag), metavar) for each flag whose value the parser names."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from named_values(sub, (*path, name))
        elif action.option_strings and isinstance(action.metavar, str):
            yield (path, max(action.option_strings, key=len)), action.metavar


def test_docs_write_each_flags_value_as_the_command_names_it():
    """`--file EVENT.json` here and `--file facts.json` there: a placeholder (a capitalised
    word) after a flag is the one `approver … --help` shows."""
    metavars = dict(named_values(cli.parser()))
    known = {path for path, _, _ in commands(cli.parser())}
    wrong = []
    for doc in [README, *sorted((ROOT / "docs").rglob("*.md"))]:
        text = doc.read_text(encoding="utf-8")
        path: tuple[str, ...] = ()
        for span in re.findall(r"`([^`\n]+)`", text):
            words = span.split()
            if words[0] == "approver":  # `--file F` after it is more of the same command
                words, path = words[1:], ()
                while words and (*path, words[0]) in known:
                    path, words = (*path, words[0]), words[1:]
            elif not words[0].startswith("--"):
                continue
            for flag, value in VALUE.findall(span):
                want = metavars.get((path, flag))
                if want and value != want:
                    wrong.append(f"{doc.relative_to(ROOT)}: `{span}` writes {flag} {value}, "
                                 f"the command names it {want}")
    assert not wrong, "; ".join(wrong)
