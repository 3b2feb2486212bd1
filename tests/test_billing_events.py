"""Billing event parsing: our schema and Stripe's subscription events, to one form."""

import copy

import pytest

from approver.billing.events import (
    BadEvent,
    Event,
    Ignored,
    parse_standard,
    parse_stripe,
    schema,
)

STRIPE = {
    "id": "evt_1",
    "type": "customer.subscription.updated",
    "created": 1_795_000_000,
    "data": {"object": {
        "status": "active",
        "metadata": {"tyk_developer_id": "dev1"},
        "items": {"data": [{"price": {"id": "price_1", "nickname": "Pro", "lookup_key": "pro"}}]},
    }},
}


def stripe(**changes):
    event = copy.deepcopy(STRIPE)
    subscription = event["data"]["object"]
    for name, value in changes.items():
        target = event if name in ("type", "id", "created") else subscription
        if value is None:
            target.pop(name, None)
        else:
            target[name] = value
    return event


def test_our_billing_status_event_is_normalized():
    event = parse_standard("msg_1", {"type": "billing.status", "data": {
        "developer_id": "dev1", "developer_email": "d@example.com", "status": "past_due",
        "plan": "pro", "occurred_at": "2026-11-23T10:00:00Z"}})
    assert event == Event("msg_1", "billing.status", {
        "developer_id": "dev1", "developer_email": "d@example.com", "status": "past_due",
        "plan": "pro", "occurred_at": "2026-11-23T10:00:00Z"}, "standard")


def test_event_round_trips_through_plain_data():
    event = parse_stripe(STRIPE)
    assert Event.from_dict(event.to_dict()) == event


def test_decision_reason_is_optional():
    event = parse_standard("m", {"type": "key_request.decision",
                                 "data": {"key_request_id": "kr1", "decision": "approve"}})
    assert event.data == {"key_request_id": "kr1", "decision": "approve", "reason": None}


def test_other_types_of_ours_are_ignored():
    event = parse_standard("m", {"type": "billing.invoice", "data": {}})
    assert event == Ignored("billing.invoice")


@pytest.mark.parametrize("raw,ours", [
    ("trialing", "trialing"), ("active", "active"), ("past_due", "past_due"),
    ("unpaid", "past_due"), ("incomplete", "past_due"), ("paused", "past_due"),
    ("canceled", "canceled"), ("incomplete_expired", "canceled"),
])
def test_stripe_statuses_map_to_ours(raw, ours):
    event = parse_stripe(stripe(status=raw))
    assert event.data["status"] == ours
    assert event.type == "billing.status"
    assert event.source == "stripe"


def test_deleted_subscription_is_canceled_whatever_its_status():
    event = parse_stripe(stripe(type="customer.subscription.deleted", status="active"))
    assert event.data["status"] == "canceled"


def test_stripe_event_fields():
    event = parse_stripe(stripe(type="customer.subscription.created"))
    assert event.id == "evt_1"
    assert event.data == {"developer_id": "dev1", "status": "active", "plan": "pro",
                          "occurred_at": "2026-11-18T11:06:40Z"}


@pytest.mark.parametrize("price,plan", [
    ({"id": "price_1", "nickname": "Pro", "lookup_key": "pro"}, "pro"),
    ({"id": "price_1", "nickname": "Pro", "lookup_key": None}, "Pro"),
    ({"id": "price_1", "nickname": ""}, "price_1"),
    ({}, None),
])
def test_stripe_plan_comes_from_the_first_price(price, plan):
    assert parse_stripe(stripe(items={"data": [{"price": price}, {"price": {"id": "x"}}]})
                        ).data["plan"] == plan


def test_stripe_subscription_without_items_has_no_plan():
    assert parse_stripe(stripe(items=None)).data["plan"] is None


def test_stripe_developer_email_identifies_the_developer():
    event = parse_stripe(stripe(metadata={"tyk_developer_email": "d@example.com",
                                          "tyk_developer_id": ""}))
    assert event.data["developer_email"] == "d@example.com"
    assert "developer_id" not in event.data


def test_other_stripe_events_are_ignored():
    assert parse_stripe(stripe(type="invoice.paid")) == Ignored("invoice.paid", "stripe")


@pytest.mark.parametrize("event,field", [
    ([], "(top level)"),
    (stripe(type=None), "type"),
    (stripe(id=None), "id"),
    (stripe(id="evt 1"), "id"),
    (stripe(created="yesterday"), "created"),
    (stripe(created=True), "created"),
    (stripe(created=10**20), "created"),
    ({**STRIPE, "data": {}}, "data.object"),
    (stripe(metadata=None), "data.object.metadata"),
    (stripe(metadata=["x"]), "data.object.metadata"),
    (stripe(metadata={"tyk_developer_id": "a:b"}), "data.object.metadata.tyk_developer_id"),
    (stripe(metadata={"tyk_developer_email": "nobody"}),
     "data.object.metadata.tyk_developer_email"),
    (stripe(status="mystery"), "data.object.status"),
    (stripe(status=None), "data.object.status"),
])
def test_bad_stripe_events_name_the_field(event, field):
    with pytest.raises(BadEvent) as caught:
        parse_stripe(event)
    assert str(caught.value).startswith(field + ":")


def test_schema_is_a_served_document():
    document = schema()
    assert document["$id"].endswith("/billing-event.json")
    assert set(document["$defs"]["billing_status"]["properties"]["status"]["enum"]) == {
        "trialing", "active", "past_due", "canceled"}
