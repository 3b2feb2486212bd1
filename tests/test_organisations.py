"""A key request event of an organisation the service does not serve is recognised at
once: answered 200 "ignored", logged once with the organisation, counted, never queued."""

import logging

from approver.pipeline import health, metrics
from tests.test_webhook import SAMPLE, post, queued_ids

OTHER = "5e2743567c1f8800018bdf35"  # the org of Tyk's documented webhook sample


def foreign_events() -> float:
    return metrics.FOREIGN_ORG_EVENTS.labels("classic")._value.get()


def event_of(org: str, request_id: str) -> dict:
    return {**SAMPLE, "data": {**SAMPLE["data"], "org_id": org, "id": request_id}}


def test_the_health_check_learns_the_organisation_the_dashboard_serves(rt, sandbox):
    assert rt.store.served_org() is None
    health.publish_health(rt)
    assert rt.store.served_org() == sandbox.app.sandbox.org_id


def test_an_event_of_another_organisation_is_ignored_logged_once_and_counted(
        client, rt, sandbox, caplog):
    health.publish_health(rt)
    served = sandbox.app.sandbox.org_id
    before = foreign_events()
    caplog.set_level(logging.WARNING, logger="approver.web.hooks")
    ids = ["5e543dd0f56e1a4affdd7ac1", "5e543dd0f56e1a4affdd7ac2"]
    for request_id in ids:
        response = post(client, event_of(OTHER, request_id))
        assert response.status_code == 200
        assert response.json == {"status": "ignored", "event": SAMPLE["event"],
                                 "reason": "organisation not served", "org_id": OTHER,
                                 "key_request_id": request_id}
    assert queued_ids(rt) == []  # never queued, so never retried
    assert foreign_events() - before == 2
    said = [r.getMessage() for r in caplog.records if OTHER in r.getMessage()]
    assert len(said) == 1 and served in said[0] and "one service per organisation" in said[0]
    # Its own organisation's events are queued as ever.
    assert post(client, event_of(served, ids[0])).status_code == 202
    assert len(queued_ids(rt)) == 1


def test_until_a_worker_has_seen_the_organisation_events_are_queued(client, rt):
    assert rt.store.served_org() is None
    assert post(client, event_of(OTHER, SAMPLE["data"]["id"])).status_code == 202
    assert len(queued_ids(rt)) == 1
