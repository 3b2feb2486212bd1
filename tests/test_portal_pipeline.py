"""New-portal access requests end to end: webhook, reconciler, shipped rules, portal verbs."""

import pytest

from approver import state as st
from approver.pipeline import billing, decide, reconcile
from approver.pipeline.decide.apply import apply_decision
from approver.pipeline.sources import RevocationFailed, RevocationRefused, shown
from approver.rules import Facts
from approver.tyk import BadRequest, DashboardError
from tests.conftest import PORTAL_HOOK_TOKEN, drain, with_portal

ALICE, BOB, CAROL = "alice@acme.partner.example", "bob@mailinator.com", "carol@gmail.com"
FREE_POLICY = "64b0000000000000000000b1"
API = "/portal-api/access_requests/"
FIELDS = {"company": "Somewhere", "use_case": "reporting"}


@pytest.fixture(params=["string", "list"])
def products_shape(request, portal):
    """Both shapes Tyk's portal answers `Products` in (a string, a list)."""
    portal.app.sandbox.set_mode("products", request.param)
    return request.param


@pytest.fixture
def settings(settings, portal):
    return with_portal(settings, portal)


def ask(portal, email, products=("Free",), plan="Free plan"):
    """A developer asks for access in the new portal; returns the stored access request."""
    return portal.app.sandbox.create_access_request(email, list(products), plan)


def deliver(client, access_request, **message):
    body = {"Event": "AccessRequestCreated",
            "Message": {"ID": access_request["ID"], "Status": "pending", **message},
            "Timestamp": "2026-01-01T00:00:00Z"}
    response = client.post(f"/hooks/portal/{PORTAL_HOOK_TOKEN}", json=body)
    assert response.status_code == 202, response.data
    return response


def calls(portal, method, path):
    return portal.app.sandbox.calls(method=method, path=path)


def ref(access_request):
    return f"portal-{access_request['ID']}"


@pytest.mark.parametrize("taken", ["PUT", "POST"])
def test_partner_access_request_is_approved_in_the_portal(client, work, rt, portal,
                                                         products_shape, taken):
    portal.app.sandbox.set_mode("decide_method", taken)
    ar = ask(portal, ALICE)
    deliver(client, ar)
    work()
    assert portal.app.sandbox.get_access_request(ar["ID"])["Status"] == "approved"
    state = rt.store.state(ref(ar))
    assert (state["state"], state["outcome"], state["rule"]) == (
        st.APPLIED, "approve", "partners")
    assert state["portal"] == "portal"
    assert state["policies"] == ["product-1", "plan-1"]
    # The access request is the handle on its credentials: its id is kept as the key id.
    assert state["key_ids"] == [str(ar["ID"])]
    kept = rt.store.approved_keys("2")
    assert set(kept) == {str(ar["ID"])} and kept[str(ar["ID"])]["portal"] == "portal"


@pytest.mark.parametrize("taken", ["PUT", "POST"])
def test_disposable_email_access_request_is_rejected(client, work, rt, portal, taken):
    portal.app.sandbox.set_mode("decide_method", taken)
    ar = ask(portal, BOB)
    deliver(client, ar)
    work()
    assert portal.app.sandbox.get_access_request(ar["ID"])["Status"] == "rejected"
    state = rt.store.state(ref(ar))
    assert (state["outcome"], state["rule"]) == ("deny", "deny-disposable-email")
    assert len(calls(portal, taken, f"{API}{ar['ID']}/reject")) == 1
    assert calls(portal, "DELETE", API) == []


def test_free_mail_access_request_is_left_pending(client, work, rt, portal):
    ar = ask(portal, CAROL)
    deliver(client, ar)
    work()
    assert portal.app.sandbox.get_access_request(ar["ID"])["Status"] == "pending"
    state = rt.store.state(ref(ar))
    assert (state["outcome"], state["rule"]) == ("review", "free-mail-to-review")
    assert calls(portal, "PUT", API) == []


def test_forged_payload_is_decided_on_the_portals_truth(client, work, rt, portal,
                                                       products_shape):
    ar = ask(portal, BOB)
    # The event claims Alice's user and a different plan; the portal says it is Bob's.
    deliver(client, ar, ByUser=2, PlanID=2, ProductIDs=[2], AppID=99)
    work()
    state = rt.store.state(ref(ar))
    assert (state["outcome"], state["rule"]) == ("deny", "deny-disposable-email")
    assert state["developer_id"] == "3"
    assert calls(portal, "PUT", f"{API}{ar['ID']}/approve") == []


def test_duplicate_deliveries_make_one_approve_call(client, work, rt, portal):
    ar = ask(portal, ALICE)
    for _ in range(3):
        deliver(client, ar)
    work()
    deliver(client, ar)  # after the decision: a new job that finds it final
    work()
    assert len(calls(portal, "PUT", f"{API}{ar['ID']}/approve")) == 1
    decided = [e for e in rt.store.entries(50, ref(ar)) if e["event"] == "decided"]
    assert len(decided) == 1


def test_an_access_request_approved_meanwhile_is_done_not_an_error(rt, portal):
    ar = ask(portal, ALICE)
    source, native_id = rt.source(ref(ar))
    request = source.fetch(native_id)
    portal.app.sandbox.approve_access_request(ar["ID"])  # a human was quicker
    applied = source.approve(request)
    assert applied.already_processed is True
    assert applied.key_ids == (str(ar["ID"]),)
    # Rejected meanwhile: a deny is done too.
    other = ask(portal, ALICE)
    request = source.fetch(str(other["ID"]))
    portal.app.sandbox.reject_access_request(other["ID"])
    assert source.deny(request, "no").already_processed is True


def test_approving_an_access_request_rejected_meanwhile_fails_its_apply(rt, portal):
    # As a classic key request deleted meanwhile: the approve is not recorded as done.
    ar = ask(portal, ALICE)
    source, native_id = rt.source(ref(ar))
    request = source.fetch(native_id)
    rt.store.save_state(ref(ar), state=st.APPLYING, outcome="approve",
                        rule="partners", reason="r", decision_id="d1",
                        developer_id="2", policies=["product-1", "plan-1"])
    portal.app.sandbox.reject_access_request(ar["ID"])  # a person was quicker
    with pytest.raises(BadRequest, match="is rejected"):
        apply_decision(rt, request, rt.store.state(ref(ar)), "webhook")
    state = rt.store.state(ref(ar))
    assert (state["state"], state["error_permanent"]) == (st.FAILED, "True")
    assert [e["event"] for e in rt.store.entries(10, ref(ar))] == ["apply_failed"]
    assert rt.store.approved_keys("2") == {}
    assert portal.app.sandbox.get_access_request(ar["ID"])["Status"] == "rejected"


def test_a_decision_recorded_before_a_crash_is_resumed_once(rt, portal):
    ar = ask(portal, ALICE)
    rt.store.save_state(ref(ar), state=st.APPLYING, outcome="approve", rule="partners",
                        reason="r", decision_id="d1", developer_id="2",
                        policies=["product-1", "plan-1"])
    portal.app.sandbox.approve_access_request(ar["ID"])  # applied before the crash
    decide.run(rt, ref(ar), "reconciler")
    state = rt.store.state(ref(ar))
    assert state["state"] == st.APPLIED and state["already_processed"]
    assert calls(portal, "PUT", API) == []


def test_a_deleted_access_request_is_skipped(rt, portal):
    ar = ask(portal, ALICE)
    portal.app.sandbox.delete_access_request(ar["ID"])
    assert decide.run(rt, ref(ar), "webhook").state == st.SKIPPED


def test_an_access_request_read_without_a_status_is_retried_never_skipped_or_denied(
        client, work, rt, portal):
    fresh, in_review = ask(portal, ALICE), ask(portal, CAROL)
    deliver(client, in_review)
    work()
    assert rt.store.state(ref(in_review))["state"] == st.IN_REVIEW
    portal.app.sandbox.set_mode("status", "omitted")
    with pytest.raises(DashboardError, match="no Status"):
        decide.run(rt, ref(fresh), "webhook")
    with pytest.raises(DashboardError, match="no Status"):
        decide.run(rt, ref(in_review), "left-pending")
    assert rt.store.state(ref(fresh))["state"] == st.ERROR
    assert rt.store.state(ref(in_review))["state"] == st.IN_REVIEW
    assert [r for r, _ in rt.store.inbox()] == [ref(in_review)]
    assert calls(portal, "PUT", API) == []
    portal.app.sandbox.set_mode("status", "shown")  # the fact is back: decided as usual
    assert decide.run(rt, ref(fresh), "webhook").outcome == "approve"
    assert decide.run(rt, ref(in_review), "left-pending").state == st.IN_REVIEW


def test_reconciler_decides_pending_access_requests_whose_webhook_was_lost(rt, work, portal):
    alice, carol = ask(portal, ALICE), ask(portal, CAROL)
    portal.app.sandbox.approve_access_request(ask(portal, BOB)["ID"])  # not pending
    result = reconcile.run(rt)
    assert set(result.queued) == {ref(alice), ref(carol)}
    work()
    assert rt.store.state(ref(alice))["outcome"] == "approve"
    assert rt.store.state(ref(carol))["outcome"] == "review"
    again = reconcile.run(rt)
    assert (again.pending, again.queued, again.decided, again.in_review) == (1, [], 0, 1)


def test_an_access_request_announced_before_it_is_readable_is_still_decided(
        client, work, rt, portal):
    portal.app.sandbox.set_mode("record_delay", 1.5)
    ar = ask(portal, ALICE)
    deliver(client, ar)
    work()
    assert rt.store.state(ref(ar)) is None  # 404 at first: tried again after a backoff
    drain(rt, work)
    assert rt.store.state(ref(ar))["outcome"] == "approve"


def test_id_zero_event_is_found_by_the_reconciler(client, work, rt, portal):
    ar = ask(portal, ALICE)
    response = client.post(f"/hooks/portal/{PORTAL_HOOK_TOKEN}", json={
        "Event": "AccessRequestCreated",
        "Message": {"ID": 0, "CreatedAt": "0001-01-01T00:00:00Z"}})
    assert response.json["reconcile"] is True
    work()  # the reconciler pass, then the decision it queued
    work()
    assert rt.store.state(ref(ar))["outcome"] == "approve"


def test_sandbox_webhook_with_custom_header_reaches_a_decision(rt, work, portal, app):
    from approver.sandbox import serve

    web = serve(app)
    try:
        portal.app.sandbox.set_webhook_url(f"{web.url}/hooks/portal",
                                           {"X-Approver-Token": PORTAL_HOOK_TOKEN})
        ar = ask(portal, ALICE)
        from tests.conftest import wait_for

        wait_for(lambda: rt.queue.get_job_ids())
        work()
        assert rt.store.state(ref(ar))["outcome"] == "approve"
    finally:
        web.shutdown()


def test_plan_and_products_are_found_by_the_names_the_record_gives(rt, portal,
                                                                   products_shape):
    ar = ask(portal, ALICE, products=("Pro", "Free"), plan="Pro plan")
    assert ar["Plan"] == "pro_plan" and "AppID" not in ar and "PlanID" not in ar
    source, native_id = rt.source(ref(ar))
    request = source.fetch(native_id)
    assert request.policies == ("product-2", "product-1", "plan-2")
    assert request.developer_id == "2"  # from "User#2"


def test_names_are_found_past_the_first_page_of_plans_and_products(rt, portal, monkeypatch):
    monkeypatch.setattr("approver.portal.client.PAGE_SIZE", 1)
    ar = ask(portal, ALICE, products=("Pro",), plan="Pro plan")
    source, native_id = rt.source(ref(ar))
    assert source.fetch(native_id).policies == ("product-2", "plan-2")
    assert {c["query"].get("page") for c in calls(portal, "GET", "/portal-api/plans")} == {
        None, "1", "2", "3"}


def test_a_plan_made_after_the_lists_were_read_is_found(rt, portal):
    state = portal.app.sandbox
    source, _ = rt.source("portal-1")
    source.fetch(str(ask(portal, ALICE)["ID"]))  # the lists are read, and kept a while
    state._plans[3] = {**state._plans[1], "ID": 3, "Name": "gold_plan", "DisplayName": "Gold"}
    ar = ask(portal, ALICE, plan="Gold")
    assert source.fetch(str(ar["ID"])).policies[-1] == "plan-3"


def _twin_plan(portal):
    """A second plan with the free plan's name: the name alone no longer says which."""
    state = portal.app.sandbox
    state._plans[3] = {**state._plans[1], "ID": 3, "DisplayName": "Free plan (copy)",
                       "MetaData": {"tags": "paid"}}


def test_an_ambiguous_name_is_settled_by_the_webhooks_id_once_the_records_agree(
        client, work, rt, portal):
    _twin_plan(portal)
    ar = ask(portal, ALICE)
    deliver(client, ar, AppID=1, ByUser=2, PlanID=1, ProductIDs=[1])
    work()
    state = rt.store.state(ref(ar))
    assert state["policies"] == ["product-1", "plan-1"]
    assert (state["outcome"], state["rule"]) == ("approve", "partners")
    # Read once: one walk of the app's list (a walk starts with a call without `page`).
    walks = [c for c in calls(portal, "GET", "/portal-api/apps/1/access-requests")
             if "page" not in c["query"]]
    assert len(walks) == 1


def test_an_ambiguous_name_with_a_disagreeing_webhook_is_left_unknown(client, work, rt,
                                                                      portal, caplog):
    _twin_plan(portal)
    carol = ask(portal, CAROL)  # app 1
    ar = ask(portal, ALICE)     # app 2
    # The event names carol's app (which does not hold this request) and the twin plan.
    deliver(client, ar, AppID=1, ByUser=2, PlanID=3, ProductIDs=[1])
    work()
    state = rt.store.state(ref(ar))
    assert state["policies"] == ["product-1", "plan-?free_plan"]
    assert state["facts"]["policy.tags"] is None  # unknown: nothing approves on it
    assert "disagree with the portal's records" in caplog.text
    assert carol["ID"] != ar["ID"]
    # No webhook at all: the name alone cannot say which plan either.
    again = ask(portal, ALICE)
    source, native_id = rt.source(ref(again))
    assert source.fetch(native_id).policies[-1] == "plan-?free_plan"


def test_paid_product_waits_for_billing_like_a_paid_policy(client, work, rt, portal):
    ar = ask(portal, ALICE, products=("Pro",), plan="Pro plan")
    deliver(client, ar)
    work()
    state = rt.store.state(ref(ar))
    assert (state["state"], state["rule"]) == (st.WAITING, "paid-plans-need-billing")
    source, _ = rt.source(ref(ar))
    assert source.policy_tags("product-2") == {"paid"}
    assert source.policy_tags("plan-2") == {"paid", "plan"}
    assert source.policy_tags("plan-1") == {"plan"}
    assert source.policy_tags("product-404") == set()


def test_revoking_deletes_the_access_request_and_its_credentials(rt, portal):
    ar = ask(portal, ALICE)
    portal.app.sandbox.approve_access_request(ar["ID"])
    source, _ = rt.source(ref(ar))
    assert source.revoke("2", str(ar["ID"])) is True
    assert source.revoke("2", str(ar["ID"])) is False
    assert [c["active"] for c in portal.app.sandbox.credentials()] == [False]


def test_a_deletion_answered_done_while_the_request_stays_is_not_a_revocation(rt, portal):
    ar = ask(portal, ALICE)
    portal.app.sandbox.approve_access_request(ar["ID"])
    portal.app.sandbox.set_mode("revocation", "lost")
    source, _ = rt.source(ref(ar))
    with pytest.raises(RevocationFailed, match="still there after its deletion"):
        source.revoke("2", str(ar["ID"]))
    assert [c["active"] for c in portal.app.sandbox.credentials()] == [True]


def two_in_one_app(portal, credentials: str):
    """Alice's app with two approved access requests (Free, then Pro), their credentials
    her own or one shared (portal 1.16+); the two access requests."""
    tyk = portal.app.sandbox
    tyk.set_mode("credentials", credentials)
    first = ask(portal, ALICE)
    tyk.approve_access_request(first["ID"])
    (app,) = tyk.apps()
    second = tyk.create_access_request(ALICE, ["Pro"], "Pro plan", app=app["ID"])
    tyk.approve_access_request(second["ID"])
    return first, second


def revoke(rt, ar):
    """Revoke an access request's key as billing and grants do (logged, recorded)."""
    source, _ = rt.source(ref(ar))
    about = {"request_id": ref(ar), "portal": "portal"}
    return billing.revoke_key(rt, source, "2", str(ar["ID"]), about, "grant expired")


def refusals(rt, ar, event):
    return [e for e in rt.store.entries(100, request_id=ref(ar)) if e["event"] == event]


def test_a_credential_another_product_shares_is_not_revoked_and_said(rt, portal, caplog):
    first, second = two_in_one_app(portal, "shared")
    tyk = portal.app.sandbox
    assert len(tyk.credentials()) == 1  # one credential, two access requests
    for _ in range(2):
        with pytest.raises(RevocationRefused, match="also serves access request"):
            revoke(rt, first)
    assert calls(portal, "DELETE", API) == []
    assert tyk.get_access_request(second["ID"])["Status"] == "approved"
    assert [c["active"] for c in tyk.credentials()] == [True]  # Pro keeps its access
    [refused] = refusals(rt, first, "revocation_refused_shared_credential")  # once a day
    assert (refused["shared_with"], refused["products"]) == ([str(second["ID"])], ["pro_api"])
    assert refused["key_id"] == shown(str(first["ID"]))
    assert "revoked_at" not in str(rt.store.approved_keys("2"))
    assert "revocation_refused_shared_credential" in caplog.text
    secret = tyk.issued_secrets()[0]
    assert secret not in caplog.text and secret not in str(rt.store.entries(100))


def test_credentials_of_their_own_are_revoked_as_before(rt, portal):
    first, second = two_in_one_app(portal, "own")
    tyk = portal.app.sandbox
    assert revoke(rt, first) is True
    assert len(calls(portal, "DELETE", f"{API}{first['ID']}")) == 1
    assert [c["active"] for c in tyk.credentials()] == [False, True]
    assert tyk.get_access_request(second["ID"])["Status"] == "approved"
    assert [e["event"] for e in rt.store.entries(10, request_id=ref(first))] == ["revoked"]


@pytest.mark.parametrize("unread", ["/portal-api/apps", "/portal-api/apps/1/access-requests"])
def test_when_the_apps_credentials_cannot_be_read_nothing_is_deleted(rt, portal, unread):
    first, _ = two_in_one_app(portal, "own")
    portal.app.sandbox.add_fault("GET", unread, status=403, times=None)
    with pytest.raises(RevocationRefused, match="could not be read"):
        revoke(rt, first)
    assert calls(portal, "DELETE", API) == []
    assert [c["active"] for c in portal.app.sandbox.credentials()] == [True, True]
    [refused] = refusals(rt, first, "revocation_refused_credentials_unread")
    assert "not deleted" in refused["why"]


def test_portal_facts_come_from_the_records_and_are_unknown_for_classic(rt, portal, sandbox):
    ar = ask(portal, ALICE)
    source, native_id = rt.source(ref(ar))
    facts = Facts(source.gather(source.fetch(native_id), None))
    from approver.rules.values import UNKNOWN

    assert facts.get("portal.plan") == "Free plan"
    assert facts.get("portal.products") == ["Free"]
    assert facts.get("portal.app").startswith("Alice")
    # The portal has no key-request form: no source for request.fields.
    assert facts.get("request.fields.company") is UNKNOWN
    assert facts.get("request.catalogue") == ["Public Catalogue"]
    assert facts.get("developer.email") == ALICE
    assert facts.get("developer.fields.company") == "Acme Inc"
    assert facts.get("developer.inactive") is False
    assert facts.get("policy.names") == ["Free", "Free plan"]
    assert facts.get("policy.tags") == ["free", "plan"]
    kr = sandbox.app.sandbox.create_key_request(ALICE, [FREE_POLICY], FIELDS)
    classic, _ = rt.source(kr["id"])
    classic_facts = Facts(classic.gather(classic.fetch(kr["id"]), None))
    for name in ("portal.plan", "portal.products", "portal.app"):
        assert classic_facts.get(name) is UNKNOWN


def test_the_same_rules_decide_both_portals_alike(client, work, rt, portal, sandbox,
                                                  products_shape):
    outcomes = {}
    for email in (ALICE, BOB, CAROL):
        kr = sandbox.app.sandbox.create_key_request(email, [FREE_POLICY], FIELDS)
        client.post("/hooks/tyk", headers={"X-Approver-Token": rt.settings.webhook_tokens[0]},
                    json={"event": "key_request_event.submitted", "data": kr})
        ar = ask(portal, email)
        deliver(client, ar)
        outcomes[email] = (kr["id"], ref(ar))
    work()
    expected = {ALICE: ("approve", "partners"), BOB: ("deny", "deny-disposable-email"),
                CAROL: ("review", "free-mail-to-review")}
    for email, (classic_ref, portal_ref) in outcomes.items():
        classic, new = rt.store.state(classic_ref), rt.store.state(portal_ref)
        assert (classic["outcome"], classic["rule"]) == expected[email]
        assert (new["outcome"], new["rule"]) == expected[email]
        assert (classic["portal"], new["portal"]) == ("classic", "portal")
        assert classic["revision"] == new["revision"]
    decided = {e["request_id"]: e["portal"] for e in rt.store.entries(100)
               if e["event"] == "decided"}
    assert {decided[c] for c, _ in outcomes.values()} == {"classic"}
    assert {decided[p] for _, p in outcomes.values()} == {"portal"}


def test_a_decision_recorded_before_a_crash_and_decided_the_other_way_meanwhile_is_not_applied(
        rt, portal, work):
    ar = ask(portal, ALICE)
    rt.store.save_state(ref(ar), state=st.APPLYING, outcome="approve", rule="partners",
                        reason="r", decision_id="d1", developer_id="2",
                        policies=["product-1", "plan-1"])
    portal.app.sandbox.reject_access_request(ar["ID"])  # a person, before the resume
    decide.run(rt, ref(ar), "reconciler")
    state = rt.store.state(ref(ar))
    # Recorded as Tyk shows it, for good: out of the unfinished ones, logged once.
    assert (state["state"], state["outcome"], state["rule"], state["superseded"]) == (
        st.APPLIED, "deny", "tyk", "d1")
    assert ref(ar) not in rt.store.unfinished()
    reconcile.run(rt)
    work()
    assert [e["event"] for e in rt.store.entries(10, ref(ar))] == ["decided"]
    assert calls(portal, "PUT", API) == []
