"""Fact plugins: registration, timeouts and failures that become unknown, entry-point loading."""

import time

import pytest

from approver.rules import (
    UNKNOWN,
    FactContext,
    Facts,
    Registry,
    builtin_registry,
    check,
    evaluate,
    fact,
    load_rules,
    register_plugin,
)
from approver.rules import plugins as plugins_module


def plugin_facts(registry, timeout=2.0):
    """Facts over an empty context with `registry`."""
    return Facts(FactContext(request={}), registry=registry, plugin_timeout=timeout)


def test_callable_plugin_is_registered_under_its_entry_point_name():
    registry = builtin_registry()
    register_plugin(registry, "acme.score", lambda ctx: 42)
    definition = registry.facts["acme.score"]
    assert definition.plugin
    assert plugin_facts(registry).get("acme.score") == 42


def test_plugin_may_export_a_list_of_fact_definitions():
    private = Registry()

    @fact("acme.tier", type="string", description="customer tier", registry=private)
    def tier(ctx):
        return "gold"

    @fact("acme.flags.*", type="boolean", registry=private)
    def flag(ctx, name):
        return name == "vip"

    registry = builtin_registry()
    register_plugin(registry, "acme", [tier, flag])
    facts = plugin_facts(registry)
    assert facts.get("acme.tier") == "gold"
    assert facts.get("acme.flags.vip") is True
    assert registry.facts["acme.tier"].description == "customer tier"


def test_plugin_that_raises_becomes_unknown_with_a_note():
    registry = builtin_registry()

    def failing(ctx):
        raise ValueError("upstream said no")

    register_plugin(registry, "acme.fail", failing)
    facts = plugin_facts(registry)
    assert facts.get("acme.fail") is UNKNOWN
    assert facts.notes["acme.fail"] == "plugin raised ValueError: upstream said no"


def test_slow_plugin_times_out_and_becomes_unknown():
    registry = builtin_registry()

    def slow(ctx):
        time.sleep(1.0)
        return "late"

    register_plugin(registry, "acme.slow", slow)
    facts = plugin_facts(registry, timeout=0.1)
    started = time.monotonic()
    assert facts.get("acme.slow") is UNKNOWN
    assert time.monotonic() - started < 0.8
    assert facts.notes["acme.slow"] == "plugin acme.slow timed out after 0.1s"


def test_unknown_plugin_fact_fails_safe_to_review(tmp_path):
    registry = builtin_registry()
    @fact("acme.score", type="number", registry=Registry())
    def score(ctx):
        raise RuntimeError("x")

    register_plugin(registry, "acme.score", score)
    path = tmp_path / "r.yaml"
    path.write_text(
        "version: 1\nrules:\n"
        "  - id: low-score\n    when: {acme.score: {lt: 50}}\n    then: deny\n"
        "  - id: high-score\n    when: {not: {acme.score: {lt: 50}}}\n    then: approve\n"
    )
    decision = evaluate(load_rules(path, registry), plugin_facts(registry))
    assert (decision.outcome, decision.rule_id) == ("review", "low-score")
    assert decision.reason == ("Rule low-score could not be evaluated: acme.score is unknown "
                               "(plugin raised RuntimeError: x).")


def test_a_plugin_fact_without_a_type_may_only_be_tested_by_exists(tmp_path):
    registry = builtin_registry()
    register_plugin(registry, "acme.score", lambda ctx: 1)
    path = tmp_path / "r.yaml"
    path.write_text("version: 1\nrules:\n  - id: a\n    when: {acme.score: {lt: 50}}\n"
                    "    then: deny\n")
    [problem] = check(path, registry)
    assert "acme.score declares no type, so only `exists` may test it" in problem.message
    path.write_text("version: 1\nrules:\n  - id: a\n    when: {acme.score: {exists: false}}\n"
                    "    then: deny\n")
    assert check(path, registry) == []


def test_rules_naming_a_plugin_fact_fail_to_load_without_it(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("version: 1\nrules:\n  - id: a\n    when: {acme.score: 1}\n    then: deny\n")
    assert "unknown fact 'acme.score'" in check(path, builtin_registry())[0].message


def test_register_plugin_rejects_what_is_not_a_fact():
    with pytest.raises(TypeError):
        register_plugin(Registry(), "bad", 42)
    with pytest.raises(TypeError):
        register_plugin(Registry(), "bad", [lambda ctx: 1])


class FakeEntryPoint:
    """Stands in for an importlib.metadata entry point."""

    def __init__(self, name, obj):
        self.name = name
        self.value = f"fake:{name}"
        self._obj = obj

    def load(self):
        if isinstance(self._obj, Exception):
            raise self._obj
        return self._obj


def test_load_plugins_registers_entry_points_and_skips_broken_ones(monkeypatch, caplog):
    points = [
        FakeEntryPoint("acme.ok", lambda ctx: "ok"),
        FakeEntryPoint("acme.broken", ImportError("no module named acme")),
    ]
    seen = {}

    def fake_entry_points(group):
        seen["group"] = group
        return points

    monkeypatch.setattr(plugins_module, "entry_points", fake_entry_points)
    registry = builtin_registry()
    assert plugins_module.load_plugins(registry) == ["acme.ok"]
    assert seen["group"] == "approver.facts"
    assert "acme.ok" in registry.facts and "acme.broken" not in registry.facts
    assert "acme.broken" in caplog.text


def test_a_plugin_list_given_as_a_tuple_compares_as_the_rules_list(tmp_path):
    registry = builtin_registry()

    @fact("crm.tags", type="list of text", registry=Registry())
    def tags(ctx):
        return ("blocked",)

    register_plugin(registry, "crm", [tags])
    path = tmp_path / "r.yaml"
    path.write_text("version: 1\nrules:\n  - id: blocked\n    when: {crm.tags: [blocked]}\n"
                    "    then: deny\n  - id: rest\n    when: {crm.tags: {exists: true}}\n"
                    "    then: approve\n")
    ruleset = load_rules(path, registry=registry)
    assert evaluate(ruleset, plugin_facts(registry)).rule_id == "blocked"
