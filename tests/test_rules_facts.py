"""Classic-portal facts from Tyk JSON, email-domain normalisation, unknowns and their notes."""

from datetime import UTC, datetime

import pytest

from approver.rules import UNKNOWN, FactContext, Facts, builtin_registry, normalise_email_domain

DEVELOPER = {
    "id": "dev1",
    "email": "Bob@Example.COM",
    "date_created": "2020-02-04T16:23:44.936+02:00",
    "inactive": False,
    "keys": {"k1": ["pol-b", "pol-a"], "k2": ["pol-a"]},
    "fields": {"Name": "Bob", "custom1": "x"},
}
REQUEST = {
    "id": "req1",
    "for_plan": "pol-a",
    "apply_policies": ["pol-a", "pol-b"],
    "by_user": "dev1",
    "fields": {"company": "ACME Corp", "use": ""},
    "date_created": "2019-06-04T07:21:35.975113283Z",
    "catalogue_entry": {"name": "Frontend APIs", "policy_id": "pol-a"},
    "catalogues": [{"name": "Frontend APIs"}, {"name": "Payments"}],
}
POLICIES = {
    "pol-a": {"name": "Free", "tags": ["free", "public"]},
    "pol-b": {"name": "Pro", "tags": ["paid", "public"]},
}


def facts_for(**changes):
    """Facts over the sample context, with parts replaced by `changes`."""
    parts = {
        "request": REQUEST,
        "developer": DEVELOPER,
        "policies": POLICIES,
        "billing": {"status": "active", "plan": "pro", "updated_at": "2026-11-23T10:00:00Z"},
    }
    parts.update(changes)
    return Facts(FactContext(**parts), registry=builtin_registry())


@pytest.mark.parametrize(
    ("email", "domain"),
    [
        ("Bob@MAILINATOR.COM.", "mailinator.com"),
        ("user@bücher.example", "xn--bcher-kva.example"),
        ("user@xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("odd@name@Sub.Example.org", "sub.example.org"),
    ],
)
def test_email_domain_is_normalised(email, domain):
    assert normalise_email_domain(email) == domain
    assert facts_for(developer={"email": email}).get("developer.email_domain") == domain


def test_classic_portal_facts_come_from_tyk_json():
    facts = facts_for()
    assert facts.get("request.id") == "req1"
    assert facts.get("request.policies") == ["pol-a", "pol-b"]
    assert facts.get("request.fields.company") == "ACME Corp"
    assert facts.get("request.fields.use") == ""
    assert facts.get("request.catalogue") == ["Frontend APIs", "Payments"]
    assert facts.get("request.created_at") == datetime(2019, 6, 4, 7, 21, 35, 975113, tzinfo=UTC)
    assert facts.get("developer.id") == "dev1"
    assert facts.get("developer.email") == "Bob@Example.COM"
    assert facts.get("developer.email_domain") == "example.com"
    assert facts.get("developer.fields.Name") == "Bob"
    assert facts.get("developer.created_at").isoformat() == "2020-02-04T16:23:44.936000+02:00"
    assert facts.get("developer.inactive") is False
    assert facts.get("developer.key_count") == 2
    assert facts.get("developer.policies") == ["pol-a", "pol-b"]
    assert facts.get("policy.names") == ["Free", "Pro"]
    assert facts.get("policy.tags") == ["free", "paid", "public"]
    assert facts.get("billing.status") == "active"
    assert facts.get("billing.plan") == "pro"
    assert facts.get("billing.updated_at") == datetime(2026, 11, 23, 10, tzinfo=UTC)


def test_request_policies_fall_back_to_for_plan():
    facts = facts_for(request={"for_plan": "pol-x", "apply_policies": []})
    assert facts.get("request.policies") == ["pol-x"]


def test_catalogue_comes_from_the_catalogue_document_when_the_request_has_none():
    catalogue = {"apis": [{"name": "A", "policy_id": "pol-a"}, {"name": "C", "policy_id": "pol-c"}]}
    facts = facts_for(request={"apply_policies": ["pol-a"]}, catalogue=catalogue)
    assert facts.get("request.catalogue") == ["A"]


def test_developer_falls_back_to_the_embedded_portal_developer():
    facts = facts_for(developer=None, request={**REQUEST, "portal_developer": {"email": "e@f.org"}})
    assert facts.get("developer.email_domain") == "f.org"


def test_billing_facts_are_unknown_when_never_heard_of():
    facts = facts_for(billing=None)
    for name in ("billing.status", "billing.plan", "billing.updated_at"):
        assert facts.get(name) is UNKNOWN
        assert facts.notes[name] == "no billing state"


def test_missing_data_is_unknown_with_a_note():
    facts = facts_for(developer=None, request={"id": "r"}, policies={})
    assert facts.get("developer.email") is UNKNOWN
    assert facts.notes["developer.email"] == "no developer record"
    assert facts.get("request.fields.company") is UNKNOWN
    assert "no field 'company'" in facts.notes["request.fields.company"]
    assert facts.get("request.policies") is UNKNOWN
    assert facts.get("policy.names") is UNKNOWN
    assert facts.get("no.such.fact") is UNKNOWN
    assert facts.notes["no.such.fact"] == "no such fact"


def test_unrequested_policy_that_was_not_fetched_makes_policy_facts_unknown():
    facts = facts_for(policies={"pol-a": POLICIES["pol-a"]})
    assert facts.get("policy.tags") is UNKNOWN
    assert facts.notes["policy.tags"] == "policy pol-b was not fetched"


def test_facts_are_computed_once_and_lazily():
    calls = []
    registry = builtin_registry()

    @registry.fact("acme.count", type="number")
    def count(ctx):
        calls.append(1)
        return 7

    facts = Facts(FactContext(request={}), registry=registry)
    assert facts.resolved == {}
    assert facts.get("acme.count") == 7
    assert facts.get("acme.count") == 7
    assert calls == [1]
    assert facts.resolved == {"acme.count": 7}


def test_resolved_is_json_friendly_with_unknown_as_null():
    facts = facts_for(billing=None)
    facts.get("billing.status")
    facts.get("request.created_at")
    assert facts.resolved == {
        "billing.status": None,
        "request.created_at": "2019-06-04T07:21:35.975113+00:00",
    }


def test_from_values_takes_flat_or_nested_names():
    flat = Facts.from_values({"developer.email_domain": "x.com", "request.fields.company": "ACME"})
    nested = Facts.from_values(
        {"developer": {"email_domain": "x.com"}, "request": {"fields": {"company": "ACME"}}}
    )
    for facts in (flat, nested):
        assert facts.get("developer.email_domain") == "x.com"
        assert facts.get("request.fields.company") == "ACME"
        assert facts.get("billing.status") is UNKNOWN
        assert facts.notes["billing.status"] == "not given"


def test_from_values_derives_email_domain_from_email():
    facts = Facts.from_values({"developer.email": "Bob@MAILINATOR.COM."})
    assert facts.get("developer.email_domain") == "mailinator.com"
    given = Facts.from_values({"developer.email": "a@b.com", "developer.email_domain": "given.org"})
    assert given.get("developer.email_domain") == "given.org"


def test_from_values_parses_datetime_strings():
    facts = Facts.from_values({"developer.created_at": "2024-05-01T00:00:00Z"})
    assert facts.get("developer.created_at") == datetime(2024, 5, 1, tzinfo=UTC)


def test_a_fact_that_raises_becomes_unknown_with_a_note():
    registry = builtin_registry()

    @registry.fact("acme.broken", type="text")
    def broken(ctx):
        raise KeyError("oops")

    facts = Facts(FactContext(request={}), registry=registry)
    assert facts.get("acme.broken") is UNKNOWN
    assert facts.notes["acme.broken"] == "fact raised KeyError: 'oops'"


@pytest.mark.parametrize("value", ["false", "true", 0, 1, None])
def test_an_inactive_flag_that_is_not_a_boolean_is_unknown(value):
    facts = facts_for(developer={**DEVELOPER, "inactive": value})
    assert facts.get("developer.inactive") is UNKNOWN
