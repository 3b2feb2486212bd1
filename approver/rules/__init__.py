"""Rules: load YAML rule files, resolve facts, evaluate to a Decision. No network I/O."""

from approver.rules.docs import vocabulary_markdown
from approver.rules.engine import Decision, evaluate
from approver.rules.errors import Problem, RulesError
from approver.rules.facts import FactContext, normalise_email_domain
from approver.rules.live import LiveRules
from approver.rules.loader import check, load_rules, schema
from approver.rules.plugins import load_plugins, register_plugin
from approver.rules.registry import REGISTRY, FactDef, OperatorDef, Registry, fact, operator
from approver.rules.resolver import Facts
from approver.rules.ruleset import DEFAULT_MESSAGES, Rule, RuleSet, WaitSpec, developer_message
from approver.rules.testing import CaseResult, TestReport, run_rule_tests
from approver.rules.values import UNKNOWN, FactUnavailable
from approver.rules.vocabulary import (
    BUILTIN_MODULES,
    builtin_registry,
    default_registry,
    register_builtins,
)

__all__ = [
    "BUILTIN_MODULES",
    "DEFAULT_MESSAGES",
    "REGISTRY",
    "UNKNOWN",
    "CaseResult",
    "Decision",
    "FactContext",
    "FactDef",
    "FactUnavailable",
    "Facts",
    "LiveRules",
    "OperatorDef",
    "Problem",
    "Registry",
    "Rule",
    "RuleSet",
    "RulesError",
    "TestReport",
    "WaitSpec",
    "builtin_registry",
    "check",
    "default_registry",
    "developer_message",
    "evaluate",
    "fact",
    "load_plugins",
    "load_rules",
    "normalise_email_domain",
    "operator",
    "register_builtins",
    "register_plugin",
    "run_rule_tests",
    "schema",
    "vocabulary_markdown",
]
