"""Loading rule files: discovery, YAML with lines, JSON Schema, semantic checks, compilation.

Over 300 lines: one pass over a file, whose steps share the lines that errors name.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from importlib import resources
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from approver.rules import approvals as approvals_block
from approver.rules import grants
from approver.rules.conditions import Parser, compile_node
from approver.rules.errors import Problem, RulesError
from approver.rules.groups import GROUPS_FILE
from approver.rules.groups import load as group_contacts
from approver.rules.registry import Registry, suggest
from approver.rules.ruleset import Rule, RuleSet, WaitSpec, parse_template
from approver.rules.values import parse_duration
from approver.rules.vocabulary import default_registry
from approver.rules.yamlsource import Located, SourceError, load_located

RULE_SUFFIXES = (".yaml", ".yml")
DEFAULT_OUTCOME = "review"
OUTCOMES_ON_TIMEOUT = ("approve", "deny", "review")
# Far above any real policy (the shipped rules are 3 KB), far below what hurts a worker.
MAX_FILE_BYTES = 256 * 1024
MAX_RULESET_BYTES = 1024 * 1024


@cache
def schema() -> dict:
    """The rules-file JSON Schema (Draft 2020-12) shipped as `schema.json`."""
    return json.loads(resources.files("approver.rules").joinpath("schema.json").read_text())


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(schema())


def rule_files(path: str | Path) -> list[Path]:
    """The rule files at `path`: the file itself, or a folder's `*.yaml`/`*.yml` in name order."""
    path = Path(path)
    if path.is_dir():
        # Only the folder's own files: `tests/` (and any other subfolder) holds no rules.
        # `groups.yaml` holds the groups' contacts (rules/groups.py), not rules.
        return sorted(p for p in path.iterdir() if p.is_file() and p.suffix in RULE_SUFFIXES
                      and p.name != GROUPS_FILE)
    return [path]


def load_rules(path: str | Path, registry: Registry | None = None) -> RuleSet:
    """Load and compile the rules at `path`; raise RulesError listing every problem."""
    ruleset, problems = _load(path, registry)
    if problems:
        raise RulesError(problems)
    assert ruleset is not None
    return ruleset


def check(path: str | Path, registry: Registry | None = None) -> list[Problem]:
    """Every problem in the rules at `path` (empty when they load)."""
    return _load(path, registry)[1]


def _load(path: str | Path, registry: Registry | None) -> tuple[RuleSet | None, list[Problem]]:
    registry = registry if registry is not None else default_registry()
    problems: list[Problem] = []
    if not Path(path).exists():
        return None, [Problem(str(path), 0, "no such file or folder; the service reads its "
                                            "rules from APPROVER_RULES (a file or a folder)")]
    files = rule_files(path)
    if not files:
        return None, [Problem(str(path), 0, "no *.yaml or *.yml rule files in this folder")]
    problems += group_contacts(path)[1]
    digest = hashlib.sha256()
    total = 0
    rules: list[Rule] = []
    seen_ids: dict[str, Rule] = {}
    default: tuple[str, str, int] | None = None  # outcome, file, line
    facts_used: set[str] = set()
    for file in files:
        name = str(file)
        raw = read_limited(file, problems)
        if raw is None:
            continue
        total += len(raw)
        if total > MAX_RULESET_BYTES:
            problems.append(Problem(name, 0, f"the rule files together pass "
                                             f"{MAX_RULESET_BYTES // 1024} KiB, the limit"))
            break
        digest.update(file.name.encode() + b"\0" + raw + b"\0")
        located = _parse(name, raw, problems)
        if located is None:
            continue
        data = located.data
        problems += _schema_problems(name, located)
        if not isinstance(data, dict):
            continue
        if "default" in data and isinstance(data["default"], str):
            line = located.line(("default",))
            if default is None:
                default = (data["default"], name, line)
            elif default[0] != data["default"]:
                problems.append(
                    Problem(
                        name,
                        line,
                        f"default {data['default']!r} conflicts with {default[0]!r} "
                        f"set in {default[1]}:{default[2]}",
                    )
                )
        items = data.get("rules")
        for index, item in enumerate(items if isinstance(items, list) else []):
            if not isinstance(item, dict):
                continue
            rule = _rule(item, ("rules", index), name, located, registry, problems, facts_used)
            if rule is None:
                continue
            if rule.id in seen_ids:
                first = seen_ids[rule.id]
                problems.append(
                    Problem(
                        name,
                        located.line(("rules", index, "id")),
                        f"duplicate rule id {rule.id!r} "
                        f"(first defined at {first.file}:{first.line})",
                    )
                )
                continue
            seen_ids[rule.id] = rule
            rules.append(rule)
    if problems:
        return None, sorted(set(problems), key=lambda p: (str(p.file), p.line, p.message))
    ruleset = RuleSet(
        rules=tuple(rules),
        default=default[0] if default else DEFAULT_OUTCOME,
        revision=digest.hexdigest()[:12],
        files=tuple(str(f) for f in files),
        facts_used=frozenset(facts_used),
    )
    return ruleset, []


MAX_DEPTH = 64


def read_limited(file: Path, problems: list[Problem]) -> bytes | None:
    """The file's bytes, or None with a problem when it cannot be read or is too large."""
    try:
        with file.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        problems.append(Problem(str(file), 0, f"cannot read: {exc.strerror or exc}"))
        return None
    if len(raw) > MAX_FILE_BYTES:
        problems.append(Problem(str(file), 0, f"larger than {MAX_FILE_BYTES // 1024} KiB, the "
                                              f"limit for one file; split it"))
        return None
    return raw


def _depth(data) -> int:
    """How deeply lists and mappings nest in `data` (walked without recursion)."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
        children = item.values() if isinstance(item, dict) else item if isinstance(
            item, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _parse(name: str, raw: bytes, problems: list[Problem]) -> Located | None:
    try:
        located = load_located(raw.decode("utf-8"))
    except RecursionError:
        # PyYAML composes nodes recursively: absurd nesting must be a problem, not a crash.
        problems.append(Problem(name, 1, f"nested more than {MAX_DEPTH} levels deep"))
        return None
    except UnicodeDecodeError as exc:
        problems.append(Problem(name, 1, f"not UTF-8 text: {exc.reason}"))
        return None
    except SourceError as exc:
        problems.append(Problem(name, exc.line, str(exc)))
        return None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark else 1
        what = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        problems.append(
            Problem(name, line, f"YAML syntax: {what}" + (f" ({context})" if context else ""))
        )
        return None
    problems += [Problem(name, line, message) for line, message in located.duplicates]
    if _depth(located.data) > MAX_DEPTH:
        problems.append(Problem(name, 1, f"nested more than {MAX_DEPTH} levels deep"))
        return None
    if located.data is None:
        problems.append(Problem(name, 1, "empty file; expected a mapping with version: 1"))
        return None
    return located


def _schema_problems(name: str, located: Located) -> list[Problem]:
    problems = []
    for error in _validator().iter_errors(located.data):
        path = tuple(error.absolute_path)
        # Conditions get clearer messages (with valid names) from the semantic parser.
        if len(path) >= 3 and path[0] == "rules" and path[2] == "when":
            continue
        if error.context:
            error = best_match(error.context)
            path = tuple(error.absolute_path)
        problems.append(_schema_problem(name, located, error, path))
    return problems


def _schema_problem(name: str, located: Located, error: ValidationError, path: tuple) -> Problem:
    where = _dotted(path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = [k for k in error.instance if k not in allowed]
        if extra:
            key = extra[0]
            message = f"unexpected key {key!r}; {suggest(str(key), allowed)}"
            return Problem(
                name, located.line((*path, key)), f"{where}: {message}" if where else message
            )
    message = _friendly(error, path) or error.message
    return Problem(name, located.line(path), f"{where}: {message}" if where else message)


def _friendly(error: ValidationError, path: tuple) -> str | None:
    """A message that says what to write, where the schema's own would not."""
    if error.validator == "required" and "'version'" in error.message and not path:
        return "missing `version: 1`: write it as the first line of every rule file"
    if path == ("version",):
        return f"version must be 1 (the only format there is), not {error.instance!r}"
    if path and path[-1] == "on_unknown":
        return (f"on_unknown is review, deny or skip, not {error.instance!r}: a rule that "
                f"cannot be evaluated never approves")
    if error.validator == "pattern" and path and path[-1] == "id":
        return (f"rule id {error.instance!r} may hold only letters, digits and _ . : - "
                f"(starting with a letter or digit), on one line")
    return None


def _dotted(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _rule(
    item: dict,
    path: tuple,
    name: str,
    located: Located,
    registry: Registry,
    problems: list[Problem],
    facts_used: set[str],
) -> Rule | None:
    rule_id = item.get("id")
    outcome = item.get("then")
    before = len(problems)
    parser = Parser(registry, name, lambda p: located.line(p))
    condition = parser.parse(item.get("when"), (*path, "when"))
    problems += parser.problems
    facts_used |= parser.facts_used
    wait = _wait(item, path, name, located, problems)
    steps, deadline = approvals_block.parse(item, path, name, located, problems)
    grant = grants.parse(item, path, name, located, problems)
    reason = item.get("reason")
    reason_parts: tuple = ()
    if isinstance(reason, str):
        reason_parts = parse_template(reason)
        for kind, value in reason_parts:
            if kind == "fact" and registry.lookup_fact(value) is None:
                problems.append(
                    Problem(
                        name,
                        located.line((*path, "reason")),
                        f"reason names unknown fact {{{value}}}; "
                        f"{suggest(value, registry.fact_names())}",
                    )
                )
            elif kind == "fact":
                facts_used.add(value)
    message = item.get("message")
    if isinstance(message, str) and (not message.isprintable() or "{" in message):
        problems.append(Problem(
            name, located.line((*path, "message")),
            "message is shown to the developer as written: one line of plain text, no "
            "{fact} placeholders (those are for reason, which the developer never sees)"))
    if len(problems) > before or not isinstance(rule_id, str) or not isinstance(outcome, str):
        return None
    return Rule(
        id=rule_id,
        outcome=outcome,
        file=name,
        line=located.line(path),
        condition=condition,
        reason=reason if isinstance(reason, str) else None,
        message=message.strip() if isinstance(message, str) else None,
        wait=wait,
        approvals=steps,
        deadline=deadline,
        grant=grant,
        description=item.get("description") or "",
        on_unknown=item.get("on_unknown"),
        match=compile_node(condition),
        reason_parts=reason_parts,
    )


def _wait(
    item: dict, path: tuple, name: str, located: Located, problems: list[Problem]
) -> WaitSpec | None:
    spec = item.get("wait")
    if spec is not None and item.get("then") != "wait":
        problems.append(
            Problem(name, located.line((*path, "wait")), "wait: is only allowed with then: wait")
        )
        return None
    if not isinstance(spec, dict):
        return None
    seconds = parse_duration(spec.get("timeout"))
    if "timeout" in spec and seconds is None:
        problems.append(
            Problem(
                name,
                located.line((*path, "wait", "timeout")),
                f"bad duration {spec.get('timeout')!r}; use e.g. 90s, 30m, 72h, 2d",
            )
        )
        return None
    if not isinstance(spec.get("for"), str) or spec.get("on_timeout") not in OUTCOMES_ON_TIMEOUT:
        return None  # the schema has reported it
    return WaitSpec(spec["for"], seconds or 0, spec["on_timeout"])
