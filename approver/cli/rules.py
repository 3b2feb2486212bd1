"""`approver rules`: check, test, explain, backtest and document rule files."""

from __future__ import annotations

import json
from pathlib import Path

from approver import config
from approver.cli.parsing import arg, command, count, group, one_of
from approver.errors import ApproverError
from approver.terminal import printable, printable_lines


def cmd_rules_check(args) -> int:
    """Validate rule files; also say what the running workers have in force."""
    from approver.rules import RulesError, load_rules

    settings = config.from_env()
    path = args.path or settings.rules_path
    try:
        print(f"{path}: ok, revision {load_rules(path).revision}")
        problems = []
    except RulesError as exc:
        problems = exc.problems
    problems += _list_problems(Path(path))
    for problem in problems:
        print(printable(problem))
    _print_running_rules(settings)
    return 1 if problems else 0


def _list_problems(rules_path: Path) -> list[str]:
    """`file:line: message` for each line of the admins' domain lists that is no domain."""
    from approver.pipeline.signals import lists_folder
    from approver.signals import datasets

    found = []
    for file in datasets.list_files(lists_folder(rules_path)):
        for number, message in datasets.parse(file.read_text(encoding="utf-8",
                                                             errors="replace"))[1]:
            found.append(f"{file}:{number}: {message}")
    return found

def _print_running_rules(settings) -> None:
    """The revision the workers reported, if Redis answers at once (else nothing)."""
    from redis.exceptions import RedisError

    from approver.state import Store, connection

    try:
        health = Store(connection.connect(settings, timeout=0.3)).health()
    except RedisError:
        return
    if health.get("rules_revision"):
        print(printable(f"workers run revision {health['rules_revision']} "
                        f"(reported {health.get('at')}; "
                        f"{health.get('rules_reload_failures') or 0} edits failed to load)"))
    if health.get("rules_error"):
        print(printable(f"the last edit did not load, the previous rules stay in force: "
                        f"{health['rules_error']}"))

def cmd_rules_test(args) -> int:
    """Run the rule test cases."""
    from approver.rules import run_rule_tests

    report = run_rule_tests(args.path or config.from_env().rules_path)
    print(printable_lines(str(report)))
    return 0 if report.ok else 1

def cmd_rules_facts(args) -> int:
    """List the rule vocabulary: facts (plugins included), operators, combinators."""
    from approver.rules import default_registry, vocabulary_markdown

    print(vocabulary_markdown(default_registry()))
    return 0

def cmd_rules_explain(args) -> int:
    """Dry run: the decision on a live request or an event file, with its trace."""
    from approver.pipeline import decide, runtime
    from approver.rules import FactContext, Facts, evaluate, load_rules
    from approver.rules.explain import render

    ruleset = load_rules(args.rules or config.from_env().rules_path)
    if args.request:
        rt = runtime.current()
        request = decide.fetch(rt, args.request)
        if request is None:
            raise ApproverError(f"key request {args.request} does not exist")
        facts = Facts(decide.gather(rt, request))
    else:
        try:
            document = json.loads(Path(args.file).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ApproverError(f"{args.file}: cannot read JSON: {exc}") from None
        if not isinstance(document, dict):
            raise ApproverError(f"{args.file}: expected a JSON object")
        if isinstance(document.get("data"), dict) and "event" in document:
            from approver.pipeline.signals import gather_offline

            data = document["data"]  # a Tyk webhook payload: take what it embeds
            context = FactContext(request=data, developer=data.get("portal_developer"))
            gather_offline(context, Path(args.rules or config.from_env().rules_path))
            facts = Facts(context)
        else:
            facts = Facts.from_values(document)  # a mapping of fact names to values
    decision = evaluate(ruleset, facts)
    if args.json:
        print(json.dumps(decision.to_dict(), indent=2, sort_keys=True, default=str))
    else:
        print(printable_lines(render(decision)))  # the request's fields are anyone's text
    return 0

def cmd_rules_backtest(args) -> int:
    """Replay recorded decisions against candidate rules."""
    from approver.pipeline import backtest, runtime
    from approver.rules import load_rules

    result = backtest.run(runtime.current().store, load_rules(args.path), limit=args.limit)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, sort_keys=True, default=str))
        return 0
    print(printable_lines(result.render(args.show)))  # recorded reasons and ids are data
    return 0

def cmd_rules_docs(args) -> int:
    """Write the vocabulary into docs/rules.md (between its markers; the rest is kept)."""
    from approver.rules import builtin_registry, vocabulary_markdown
    from approver.rules.docs import with_vocabulary

    text = vocabulary_markdown(builtin_registry())
    if args.output == "-":
        print(text)
        return 0
    path = Path(args.output)
    try:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        path.write_text(with_vocabulary(current, text), encoding="utf-8")
    except OSError as exc:
        raise ApproverError(f"cannot write {args.output} ({exc.strerror}): give "
                            "--output FILE, or --output - for the screen") from None
    return 0


def add_commands(sub) -> None:
    """`rules check`, `test`, `facts`, `explain`, `backtest`, `docs`."""
    rsub = group(sub, "rules", "check and test rule files")
    command(rsub, "check", cmd_rules_check, "validate rule files", arg("path", nargs="?"))
    command(rsub, "test", cmd_rules_test, "run the rule test cases", arg("path", nargs="?"))
    command(rsub, "facts", cmd_rules_facts, "list facts, operators and combinators")
    command(rsub, "explain", cmd_rules_explain, "dry run with the trace; nothing applied",
            one_of(arg("--request", help="a key request id, read from the Dashboard"),
                   arg("--file", metavar="FILE",
                       help="a Tyk event JSON file, or a JSON map of facts"),
                   required=True),
            arg("--rules", help="rules file or folder (default APPROVER_RULES)"),
            arg("--json", action="store_true"))
    command(rsub, "backtest", cmd_rules_backtest, "replay recorded decisions against PATH",
            arg("path"),
            arg("--limit", type=count, default=10_000, help="log entries to read"),
            arg("--show", type=count, default=20, help="changed requests to list"),
            arg("--json", action="store_true"))
    command(rsub, "docs", cmd_rules_docs, "write the vocabulary into docs/rules.md",
            arg("--output", default="docs/rules.md"))
