"""The Developer Portal admin API client against the sandbox portal over real HTTP."""

import pytest

from approver.portal import AccessRequest, Portal
from approver.tyk import (
    BadRequest,
    DashboardError,
    DashboardServerError,
    DashboardTimeout,
    DashboardUnavailable,
    NotFound,
    Unauthorized,
)
from tests.conftest import PORTAL_TOKEN, wait_for

ALICE = "alice@acme.partner.example"


@pytest.fixture
def state(portal):
    return portal.app.sandbox


@pytest.fixture
def client(portal):
    with Portal(portal.url, PORTAL_TOKEN, connect_timeout=1.0, read_timeout=1.0,
                backoff=0.001) as c:
        yield c


def ask(state, email=ALICE, products=("Free",), plan="Free plan"):
    return str(state.create_access_request(email, list(products), plan)["ID"])


def test_lists_pending_access_requests_across_pages(client, state, monkeypatch):
    ids = [ask(state) for _ in range(5)]
    state.approve_access_request(int(ids[0]))
    found = client.list_access_requests(status="pending")
    assert [r.id for r in found] == ids[1:]
    assert all(isinstance(r, AccessRequest) and r.pending for r in found)
    every = [c for c in state.calls("GET", "/portal-api/access_requests")]
    # The first page without `page`, then page 1, which repeats it (pages count from 1),
    # then page 2, empty.
    assert [c["query"] for c in every] == [
        {"per_page": "100"}, {"page": "1", "per_page": "100"}, {"page": "2", "per_page": "100"}]
    # Pages of 2: the walk goes on until a page shorter than the first; page 1 is no
    # longer asked, now that the client knows pages count from 1.
    monkeypatch.setattr("approver.portal.client.PAGE_SIZE", 2)
    before = len(every)
    assert len(client.list_access_requests()) == 5
    paged = state.calls("GET", "/portal-api/access_requests")[before:]
    assert [c["query"] for c in paged] == [{"per_page": "2"}] + [
        {"page": str(p), "per_page": "2"} for p in (2, 3)]


def test_reads_an_access_request_and_its_parts(client, state):
    request = client.get_access_request(ask(state, products=("Pro",), plan="Pro plan"))
    # Names, not ids (Tyk's recorded shapes): the user, plan, products and app.
    assert (request.user_id, request.plan_name, request.product_names) == (
        "2", "pro_plan", ("pro_api",))
    assert request.app_name.startswith("Alice") and request.pending
    assert "Credentials" not in request.raw
    assert client.get_user("2")["Email"] == ALICE
    assert client.get_user_custom_attributes("2") == {"company": "Acme Inc"}
    assert client.get_user_custom_attributes("3") == {}
    assert client.get_product("2")["Tags"] == ["paid"]
    assert client.get_plan("2")["DisplayName"] == "Pro plan"
    assert {p["ID"] for p in client.list_plans()} == {1, 2}
    assert {p["ID"] for p in client.list_products()} == {1, 2}
    held = client.list_app_access_requests("1")
    assert [(r.id, r.user_id, r.plan_name) for r in held] == [(request.id, "2", "pro_plan")]


def test_custom_attributes_are_read_past_the_first_page(client, state, monkeypatch):
    state._attributes[2] = {f"attr-{n}": str(n) for n in range(5)}
    monkeypatch.setattr("approver.portal.client.PAGE_SIZE", 2)
    assert client.get_user_custom_attributes("2") == {f"attr-{n}": str(n) for n in range(5)}
    # The first page, page 1 (the first again: pages count from 1), pages 2 and 3.
    assert len(state.calls("GET", "/portal-api/users/2/custom-attributes")) == 4


def test_plans_are_read_wrapped_or_as_an_array(client, state):
    for shape in ("wrapped", "array"):
        state.set_mode("plans_list", shape)
        assert {p["Name"] for p in client.list_plans()} == {"free_plan", "pro_plan"}


def test_approve_twice_is_done_once(client, state):
    request_id = ask(state)
    first, second = client.approve_access_request(request_id), client.approve_access_request(
        request_id)
    assert (first.already_processed, first.status) == (False, "approved")
    assert (second.already_processed, second.status) == (True, "approved")
    assert len(state.credentials()) == 1


def test_a_request_decided_the_other_way_meanwhile_is_an_error_not_done(client, state):
    approved, rejected = ask(state), ask(state)
    state.approve_access_request(int(approved))
    state.reject_access_request(int(rejected))
    with pytest.raises(BadRequest) as caught:
        client.reject_access_request(approved)
    assert caught.value.status == 422 and "is approved" in str(caught.value)
    with pytest.raises(BadRequest) as caught:
        client.approve_access_request(rejected)
    assert caught.value.status == 422 and "is rejected" in str(caught.value)
    assert state.access_request(int(approved))["Status"] == "approved"
    assert state.access_request(int(rejected))["Status"] == "rejected"
    assert len(state.credentials()) == 1


def test_an_access_request_read_without_a_status_is_an_error(client, state):
    request_id = ask(state)
    state.set_mode("status", "omitted")
    with pytest.raises(DashboardError, match="no Status") as caught:
        client.get_access_request(request_id)
    assert not isinstance(caught.value, NotFound)
    state.set_mode("status", "shown")
    assert client.get_access_request(request_id).status == "pending"


def test_a_422_while_still_pending_is_an_error(client, state):
    request_id = ask(state)
    state.add_fault("PUT", f"/portal-api/access_requests/{request_id}/approve", status=422,
                    message="provider refused")
    with pytest.raises(BadRequest) as caught:
        client.approve_access_request(request_id)
    assert caught.value.status == 422 and "provider refused" in str(caught.value)


def test_reads_are_retried_on_5xx_but_approve_is_not(client, state):
    request_id = ask(state)
    state.add_fault("GET", "/portal-api/access_requests/", status=503, times=2)
    assert client.get_access_request(request_id).id == request_id
    state.add_fault("PUT", "/portal-api/access_requests/", status=502, times=1)
    with pytest.raises(DashboardServerError):
        client.approve_access_request(request_id)
    assert len(state.calls("PUT", "/portal-api/access_requests/")) == 1
    assert state.access_request(int(request_id))["Status"] == "pending"


def test_a_hanging_portal_times_out_after_bounded_retries(portal, state):
    state.add_fault("GET", "/portal-api/users/", hang=0.4, times=10)
    with pytest.raises(DashboardTimeout), Portal(portal.url, PORTAL_TOKEN, read_timeout=0.1,
                                                 retries=1, backoff=0.001) as slow:
        slow.get_user("2")
    # The sandbox logs a call once it answers, after the hang.
    wait_for(lambda: len(state.calls("GET", "/portal-api/users/")) == 2, timeout=5)


def test_errors_are_typed_and_carry_the_portals_message(client, portal):
    with pytest.raises(NotFound) as caught:
        client.get_access_request("999")
    assert "access request not found" in str(caught.value)
    assert client.delete_access_request("999") is False
    with pytest.raises(Unauthorized), Portal(portal.url, "wrong-token-0123456789",
                                             backoff=0.001) as bad:
        bad.ping()
    with pytest.raises(DashboardUnavailable), Portal("http://127.0.0.1:1", PORTAL_TOKEN,
                                                     retries=0) as gone:
        gone.ping()


def test_the_token_is_sent_bare_and_never_in_errors(client, state):
    client.ping()
    assert client.base_url.endswith("/portal-api")
    with pytest.raises(ValueError) as caught:
        Portal("http://127.0.0.1:1", "bad\ntoken-secret")
    assert "token-secret" not in str(caught.value)


def test_records_name_their_user_and_give_products_as_a_string_or_a_list():
    record = AccessRequest.from_json({"ID": 4, "Status": "pending", "User": "User#9",
                                      "Plan": "free_plan", "Products": "public_product"})
    assert (record.user_id, record.plan_name, record.product_names) == (
        "9", "free_plan", ("public_product",))
    listed = AccessRequest.from_json({"ID": 4, "Products": ["A", "B"], "User": "Admin"})
    assert (listed.product_names, listed.user_id) == (("A", "B"), "")
    assert AccessRequest.from_json({"ID": 0, "User": True}).id == ""


@pytest.mark.parametrize("taken", ["PUT", "POST", "both"])
def test_approve_and_reject_work_with_put_or_post(client, state, taken):
    state.set_mode("decide_method", taken)
    approved, rejected, again = ask(state), ask(state), ask(state)
    assert client.approve_access_request(approved).status == "approved"
    assert client.reject_access_request(rejected).status == "rejected"
    assert client.approve_access_request(again).already_processed is False
    sent = [(c["method"], c["path"].rsplit("/", 2)[-2], c["status"])
            for c in state.calls(path="/portal-api/access_requests/") if c["method"] != "GET"]
    if taken == "POST":
        # PUT first (the spec); a 405, not acted on, so POST; POST from then on.
        assert sent == [("PUT", approved, 405), ("POST", approved, 200),
                        ("POST", rejected, 200), ("POST", again, 200)]
    else:
        assert sent == [("PUT", r, 200) for r in (approved, rejected, again)]
    assert [state.get_access_request(int(i))["Status"] for i in (approved, rejected, again)] \
        == ["approved", "rejected", "approved"]


def test_a_405_to_post_is_an_error_not_a_third_try(client, state):
    state.set_mode("decide_method", "POST")
    client.decide_method = "POST"
    state.add_fault("POST", "/portal-api/access_requests/", status=405, times=1)
    request_id = ask(state)
    with pytest.raises(BadRequest) as caught:
        client.approve_access_request(request_id)
    assert caught.value.status == 405
    assert state.get_access_request(int(request_id))["Status"] == "pending"
