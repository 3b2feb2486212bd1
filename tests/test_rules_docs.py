"""The vocabulary as Markdown, from the registries."""

from approver.rules import Registry, builtin_registry, fact, vocabulary_markdown


def test_vocabulary_lists_every_fact_and_operator():
    text = vocabulary_markdown(builtin_registry())
    assert "| fact | type | description |" in text
    assert "| `developer.email_domain` | text |" in text
    assert "| `request.fields.<name>` | text |" in text
    assert "| `request.policies` | list of text |" in text
    for op in ("eq", "ne", "in", "not_in", "contains", "contains_any", "contains_all", "matches"):
        assert f"| `{op}` |" in text
    for op in ("starts_with", "ends_with", "gt", "gte", "lt", "lte", "exists"):
        assert f"| `{op}` |" in text


def test_vocabulary_includes_registered_plugin_facts_and_escapes_pipes():
    registry = Registry()

    @fact("acme.score", type="number", description="risk a|b", plugin=True, registry=registry)
    def score(ctx):
        return 1

    text = vocabulary_markdown(registry)
    assert "| `acme.score` | number | risk a\\|b (plugin) |" in text
