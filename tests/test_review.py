"""The review inbox in the pipeline: entering and leaving it, people's decisions, Tyk's."""

import threading

import pytest

from approver import state as st
from approver.pipeline import decide, jobs, notify, reconcile, review
from approver.pipeline.sources import fingerprint
from approver.web import create_app
from tests.conftest import with_portal

ALICE, BOB, CAROL, DAVE = ("alice@acme.partner.example", "bob@mailinator.com",
                           "carol@gmail.com", "dave@example.com")
FREE, PRO = "64b0000000000000000000b1", "64b0000000000000000000b2"
APPROVE = "/api/portal/requests/approve/"


def submit(sandbox, email=CAROL, policies=(FREE,), fields=None):
    fields = {"company": "Carol Consulting", "use_case": "dashboards"} if fields is None \
        else fields
    return sandbox.app.sandbox.create_key_request(email, list(policies), fields)


def in_review(rt, sandbox, email=CAROL, **kw) -> str:
    """A request the shipped rules leave for a person; its id."""
    request = submit(sandbox, email, **kw)
    result = decide.run(rt, request["id"], "webhook")
    assert result.state == st.IN_REVIEW, result
    return request["id"]


def by_person(rt, ref, outcome="approve", reason="known customer", by="alice"):
    return decide.decide_by_person(rt, ref, outcome, reason, by, "cli",
                                   decided_from="ops@host")


def test_a_review_decision_waits_in_the_inbox_not_as_applied(rt, sandbox):
    ref = in_review(rt, sandbox)
    state = rt.store.state(ref)
    assert (state["state"], state["outcome"], state["rule"]) == (
        st.IN_REVIEW, "review", "free-mail-to-review")
    assert state["developer_email"] == CAROL
    assert state["policy_names"] == ["Free"]
    assert state["request_fields"]["company"] == "Carol Consulting"
    assert [r for r, _ in rt.store.inbox()] == [ref]
    # Decided again (a duplicate webhook): still a person's, nothing called in Tyk.
    assert decide.run(rt, ref, "webhook").state == st.IN_REVIEW
    assert sandbox.app.sandbox.calls(method="PUT", path=APPROVE) == []


def test_the_reconciler_counts_requests_in_review_apart_from_decided_ones(rt, sandbox):
    in_review(rt, sandbox)
    result = reconcile.run(rt)
    assert (result.pending, result.decided, result.in_review, result.queued) == (1, 0, 1, [])


def test_inbox_items_say_who_asked_for_what_why_and_since_when(rt, sandbox):
    carol = in_review(rt, sandbox)
    dave = in_review(rt, sandbox, DAVE, fields={"company": "Dave Ltd"})
    rows = review.items(rt.store)
    assert [r["id"] for r in rows] == [carol, dave]
    first = rows[0]
    assert first["developer_email"] == CAROL and first["policies"] == ["Free"]
    assert first["rule"] == "free-mail-to-review" and "gmail.com" in first["reason"]
    assert first["portal"] == "classic" and first["age"] >= 0 and first["entered_at"]
    assert [r["id"] for r in review.items(rt.store, rule="use-case-required")] == [dave]
    assert [r["id"] for r in review.items(rt.store, email="GMAIL")] == [carol]
    assert review.items(rt.store, portal="portal") == []
    assert review.items(rt.store, older_than=3600) == []


def test_a_persons_approval_is_applied_in_tyk_and_recorded_with_who_why_and_rules(
        rt, sandbox):
    ref = in_review(rt, sandbox)
    result = by_person(rt, ref)
    assert (result.state, result.outcome) == (st.APPLIED, "approve")
    assert sandbox.app.sandbox.get_key_request(ref)["approved"] is True
    state = rt.store.state(ref)
    assert (state["decided_by"], state["reason"], state["rule"]) == (
        "alice", "known customer", decide.BY_PERSON)
    assert state["revision"] == rt.rules.current().revision
    assert (state["via"], state["decided_from"], state["review_rule"]) == (
        "cli", "ops@host", "free-mail-to-review")
    assert set(rt.store.approved_keys(state["developer_id"])) == set(state["key_ids"])
    assert rt.store.inbox() == []
    decided = [e for e in rt.store.entries(10, request_id=ref) if e["event"] == "decided"]
    assert decided[0]["decided_by"] == "alice" and decided[0]["outcome"] == "approve"


def test_a_persons_denial_deletes_the_request_and_a_second_is_refused(rt, sandbox):
    ref = in_review(rt, sandbox)
    assert by_person(rt, ref, "deny", "no use case").outcome == "deny"
    assert sandbox.app.sandbox.get_key_request(ref) is None
    again = by_person(rt, ref, "approve", "oops", by="bob")
    assert again.state == "refused"
    assert again.reason == "it was already denied (by alice)"
    refused = rt.store.entries(1, request_id=ref)[0]
    assert (refused["event"], refused["decided_by"]) == ("refused", "bob")


def test_an_unknown_request_is_refused(rt, sandbox):
    result = by_person(rt, "64b00000000000000000ffff")
    assert result.state == "refused"
    assert "no record" in result.reason


def test_a_waiting_request_can_be_decided_by_a_person(rt, sandbox):
    request = submit(sandbox, DAVE, policies=(PRO,))
    assert decide.run(rt, request["id"], "webhook").state == st.WAITING
    assert [r["waiting"] for r in review.items(rt.store)] == [True]
    assert by_person(rt, request["id"]).state == st.APPLIED
    assert rt.store.waiting() == [] and rt.store.inbox() == []


def test_approval_made_in_tyk_is_recorded_with_its_key_for_revocation(rt, sandbox, work):
    ref = in_review(rt, sandbox)
    sandbox.app.sandbox.approve_key_request(ref)  # a person, in the Dashboard
    result = reconcile.run(rt)
    assert result.left_tyk == [ref]
    work()
    state = rt.store.state(ref)
    assert (state["state"], state["outcome"], state["decided_by"]) == (
        st.APPLIED, "approve", "tyk")
    developer = sandbox.app.sandbox.developer(CAROL)
    assert state["key_ids"] and set(state["key_ids"]) <= set(map(fingerprint, developer["keys"]))
    assert set(rt.store.approved_keys(developer["id"])) == set(state["key_ids"])
    assert rt.store.inbox() == []
    assert reconcile.run(rt).left_tyk == []


def test_approval_made_in_tyk_records_the_new_key_never_an_older_one(rt, sandbox, work):
    older = "5d0c6b1e7a9f3c24"  # dave's key for the Free policy, from before (the seed)
    ref = in_review(rt, sandbox, DAVE, fields={"company": "Dave Ltd"})
    assert rt.store.state(ref)["held_before"] == [fingerprint(older)]
    sandbox.app.sandbox.approve_key_request(ref)  # a person, in the Dashboard
    reconcile.run(rt)
    work()
    state = rt.store.state(ref)
    developer = sandbox.app.sandbox.developer(DAVE)
    new = {fingerprint(k) for k in developer["keys"]} - {fingerprint(older)}
    assert (state["decided_by"], set(state["key_ids"])) == ("tyk", new) and len(new) == 1


def test_deletion_made_in_tyk_is_recorded_as_denied_there(rt, sandbox, work):
    ref = in_review(rt, sandbox)
    sandbox.app.sandbox.delete_key_request(ref)
    reconcile.run(rt)
    work()
    state = rt.store.state(ref)
    assert (state["state"], state["outcome"], state["decided_by"], state["reason"]) == (
        st.APPLIED, "deny", "tyk", "deleted in Tyk by a person")
    assert rt.store.inbox() == []


def test_a_waiting_request_approved_in_tyk_leaves_the_inbox_and_its_wait(rt, sandbox, work):
    request = submit(sandbox, DAVE, policies=(PRO,))
    decide.run(rt, request["id"], "webhook")
    sandbox.app.sandbox.approve_key_request(request["id"])
    assert reconcile.run(rt).left_tyk == [request["id"]]
    work()
    assert rt.store.state(request["id"])["decided_by"] == "tyk"
    assert rt.store.waiting() == [] and rt.store.inbox() == []


def test_a_person_told_tyk_decided_meanwhile_and_that_is_recorded(rt, sandbox):
    ref = in_review(rt, sandbox)
    sandbox.app.sandbox.delete_key_request(ref)
    result = by_person(rt, ref)
    assert result.state == "refused"
    assert result.reason == "it was denied in Tyk meanwhile"
    assert rt.store.state(ref)["decided_by"] == "tyk"


def test_a_review_recorded_before_the_inbox_existed_is_adopted(rt, sandbox):
    request = submit(sandbox)
    rt.store.save_state(request["id"], state=st.APPLIED, outcome="review",
                        rule="free-mail-to-review", developer_id="x", decision_id="d1")
    assert decide.run(rt, request["id"], "replay").state == st.IN_REVIEW
    assert [r for r, _ in rt.store.inbox()] == [request["id"]]


def test_of_many_admins_claiming_at_once_exactly_one_wins(rt, sandbox):
    ref = in_review(rt, sandbox)
    outcomes, start = [], threading.Barrier(8)

    def attempt(i):
        start.wait()
        try:
            review.claim(rt.store, ref, "deny", "no", f"admin{i}", "console", "127.0.0.1")
            outcomes.append("won")
        except review.Refused as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("won") == 1
    assert all("is already deciding it" in o for o in outcomes if o != "won")


def test_a_claim_on_a_decided_request_is_refused_saying_by_whom(rt, sandbox):
    ref = in_review(rt, sandbox)
    by_person(rt, ref, "deny", "spam", by="alice")
    with pytest.raises(review.Refused, match="no longer pending: denied by alice"):
        review.claim(rt.store, ref, "approve", "", "bob", "console", "127.0.0.1")


@pytest.mark.parametrize(("reason", "outcome", "message"), [
    ("", "deny", "a reason is required"),
    ("   \n\t ", "deny", "a reason is required"),
    ("x" * 501, "approve", "at most 500"),
])
def test_bad_reasons_are_refused(rt, sandbox, reason, outcome, message):
    ref = in_review(rt, sandbox)
    with pytest.raises(review.Refused, match=message):
        review.claim(rt.store, ref, outcome, reason, "alice", "cli", "here")


def test_control_characters_in_a_reason_are_flattened():
    assert review.clean_reason("line one\r\nline two\x1b[31m", required=True) == (
        "line one line two [31m")


def test_the_handoff_page_of_a_request_in_review_says_so_at_once(rt, sandbox, settings):
    ref = in_review(rt, sandbox)
    page = create_app(settings).test_client().get(f"/handoff?key_request_id={ref}")
    assert page.status_code == 200 and b"Waiting for review" in page.data
    assert rt.queue.count == 0


class TestNewPortal:
    @pytest.fixture
    def settings(self, settings, portal):
        return with_portal(settings, portal)

    def ask(self, portal, rt):
        ar = portal.app.sandbox.create_access_request(CAROL, ["Free"], "Free plan")
        ref = f"portal-{ar['ID']}"
        assert decide.run(rt, ref, "webhook").state == st.IN_REVIEW
        return ar, ref

    def test_approval_in_the_portal_keeps_the_access_request_as_the_key(
            self, rt, portal, work):
        ar, ref = self.ask(portal, rt)
        portal.app.sandbox.approve_access_request(ar["ID"])
        reconcile.run(rt)
        work()
        state = rt.store.state(ref)
        assert (state["outcome"], state["decided_by"], state["key_ids"]) == (
            "approve", "tyk", [str(ar["ID"])])

    def test_rejection_in_the_portal_is_recorded_as_denied_there(self, rt, portal, work):
        ar, ref = self.ask(portal, rt)
        portal.app.sandbox.reject_access_request(ar["ID"])
        reconcile.run(rt)
        work()
        state = rt.store.state(ref)
        assert (state["outcome"], state["reason"]) == ("deny", "rejected in Tyk by a person")


def test_a_claim_job_run_twice_decides_once(rt, sandbox):
    ref = in_review(rt, sandbox)
    taken = review.claim(rt.store, ref, "approve", "ok", "alice", "console", "127.0.0.1")
    assert jobs.decide_claimed(ref, taken)["state"] == st.APPLIED
    assert jobs.decide_claimed(ref, taken)["state"] == st.APPLIED  # a retry after success
    approvals = sandbox.app.sandbox.calls(method="PUT", path=APPROVE + ref)
    assert len(approvals) == 1
    assert rt.store.claim_of(ref)["result"]["state"] == st.APPLIED


def test_a_claim_job_that_runs_after_its_claim_lapsed_still_decides(rt, sandbox):
    ref = in_review(rt, sandbox)
    taken = review.claim(rt.store, ref, "deny", "spam", "alice", "console", "127.0.0.1")
    rt.redis.delete(f"{st.PREFIX}claim:{ref}")
    assert jobs.decide_claimed(ref, taken)["state"] == st.APPLIED
    assert rt.store.state(ref)["decided_by"] == "alice"


def test_decision_events_name_the_person_who_decided(rt, sandbox):
    ref = in_review(rt, sandbox)
    by_person(rt, ref)
    event = notify.events_for({**rt.store.state(ref)}, None, ref)
    assert (event["type"], event["data"]["decided_by"]) == ("key_request.approved", "alice")
