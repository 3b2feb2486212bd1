"""The Tyk Dashboard client against the sandbox Dashboard over real HTTP."""

import json
import logging
import pickle
import socket

import pytest
import requests

from approver.tyk import (
    AlreadyProcessed,
    Approval,
    BadRequest,
    Dashboard,
    DashboardError,
    DashboardServerError,
    DashboardTimeout,
    DashboardUnavailable,
    DeleteByHashRefused,
    Developer,
    KeyRequest,
    NotFound,
    Policy,
    Unauthorized,
)
from approver.tyk.errors import error_for

# The same literal as tests/conftest.py (tests/ is not a package).
SANDBOX_SECRET = "sandbox-dashboard-secret-0123456789"
ALICE = "alice@acme.partner.example"
BOB = "bob@mailinator.com"


class RecordingSession(requests.Session):
    """A Session that keeps every response body, so a test can look for leaked keys."""

    def __init__(self):
        super().__init__()
        self.bodies = []
        self.attempts = 0

    def request(self, *args, **kwargs):
        self.attempts += 1
        response = super().request(*args, **kwargs)
        self.bodies.append(response.content)
        return response


@pytest.fixture
def state(sandbox):
    """The sandbox's state object."""
    return sandbox.app.sandbox


@pytest.fixture
def dashboard(sandbox):
    """A client of the sandbox with small timeouts and near-zero backoff."""
    with Dashboard(
        sandbox.url, SANDBOX_SECRET, connect_timeout=1.0, read_timeout=2.0, backoff=0.001
    ) as client:
        yield client


@pytest.fixture
def policies(dashboard):
    """The seeded policies by name."""
    return {p.name: p for p in dashboard.list_policies()}


@pytest.fixture
def alice(dashboard):
    """The seeded developer alice."""
    return dashboard.get_developer_by_email(ALICE)


def new_request(dashboard, state, developer, *policies, fields=None):
    """Create a pending key request in the sandbox and read it back through the client."""
    created = state.create_key_request(developer.id, [p.id for p in policies], fields=fields)
    request_id = created if isinstance(created, str) else created["id"]
    return dashboard.get_key_request(request_id)


def calls(state, method, path):
    """How many times the sandbox saw this call."""
    return len(state.calls(method=method, path=path))


def free_port():
    """A loopback port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_lists_policies_and_finds_developers(dashboard, policies, alice):
    assert {"Free", "Pro", "Enterprise"} <= set(policies)
    assert all(isinstance(p, Policy) and p.id for p in policies.values())
    assert dashboard.get_policy(policies["Pro"].id).name == "Pro"
    assert isinstance(alice, Developer)
    assert alice.email == ALICE
    assert dashboard.get_developer(alice.id).email == ALICE


def test_lists_and_gets_pending_key_requests(dashboard, state, policies, alice):
    request = new_request(dashboard, state, alice, policies["Free"], fields={"company": "ACME"})
    assert isinstance(request, KeyRequest)
    assert request.developer_id == alice.id
    assert request.policies == (policies["Free"].id,)
    assert request.fields["company"] == "ACME"
    assert request.approved is False
    assert request.developer is not None and request.developer.email == ALICE
    pending = dashboard.list_key_requests(approved=False)
    assert request.id in {r.id for r in pending}
    walked = list(dashboard.iter_key_requests(approved=False))
    assert {r.id for r in walked} == {r.id for r in pending}


def test_approve_returns_the_new_key_id_from_the_developer(dashboard, state, policies, alice):
    request = new_request(dashboard, state, alice, policies["Pro"])
    approval = dashboard.approve_key_request(request)
    assert approval.already_processed is False
    after = dashboard.get_developer(alice.id)
    new_keys = set(after.keys) - set(request.developer.keys)
    assert len(new_keys) == 1
    assert approval.key_ids == tuple(new_keys)
    assert policies["Pro"].id in after.keys[approval.key_ids[0]]
    assert dashboard.get_key_request(request.id).approved is True


def test_second_approve_is_already_processed_not_an_error(dashboard, state, policies, alice):
    request = new_request(dashboard, state, alice, policies["Free"])
    first = dashboard.approve_key_request(request)
    second = dashboard.approve_key_request(request)
    assert second.already_processed is True
    assert second.key_ids == first.key_ids


def test_delete_is_true_then_false(dashboard, state, policies, alice):
    request = new_request(dashboard, state, alice, policies["Free"])
    assert dashboard.delete_key_request(request.id) is True
    assert dashboard.delete_key_request(request.id) is False
    with pytest.raises(NotFound):
        dashboard.get_key_request(request.id)


def test_revoke_developer_key_is_true_then_false(dashboard, state, policies, alice):
    request = new_request(dashboard, state, alice, policies["Free"])
    (key_id,) = dashboard.approve_key_request(request).key_ids
    assert dashboard.revoke_developer_key(alice.id, key_id) is True
    assert key_id not in dashboard.get_developer(alice.id).keys
    assert dashboard.revoke_developer_key(alice.id, key_id) is False


def test_a_refused_delete_by_hash_is_named_and_other_refusals_are_not(dashboard, state,
                                                                      policies, alice):
    request = new_request(dashboard, state, alice, policies["Free"])
    (key_id,) = dashboard.approve_key_request(request).key_ids
    state.set_mode("enable_delete_key_by_hash", False)
    with pytest.raises(DeleteByHashRefused) as caught:
        dashboard.revoke_developer_key(alice.id, key_id)
    assert "enable `enable_delete_key_by_hash`" in str(caught.value)
    assert key_id not in str(caught.value)  # the path is shown without the key id
    state.add_fault("DELETE", "/api/portal/developers/", status=400, message="No.")
    with pytest.raises(BadRequest) as other:
        dashboard.revoke_developer_key(alice.id, key_id)
    assert not isinstance(other.value, DeleteByHashRefused)
    assert key_id in dashboard.get_developer(alice.id).keys


def test_wrong_secret_is_unauthorized_without_the_secret(sandbox):
    wrong = "wrong-secret-that-must-not-leak-42"
    with (
        Dashboard(sandbox.url, wrong, retries=0) as client,
        pytest.raises(Unauthorized) as caught,
    ):
        client.get_catalogue()
    error = caught.value
    assert error.status == 401
    assert error.retryable is False
    for text in (str(error), repr(error), repr(error.args)):
        assert wrong not in text
        assert SANDBOX_SECRET not in text
    assert error.__cause__ is None and error.__context__ is None


def test_unknown_ids_are_not_found(dashboard):
    with pytest.raises(NotFound) as caught:
        dashboard.get_key_request("0123456789abcdef01234567")
    assert caught.value.status == 404
    assert caught.value.path == "/api/portal/requests/0123456789abcdef01234567"
    with pytest.raises(NotFound):
        dashboard.get_developer_by_email("nobody@example.com")


def test_ids_are_quoted_into_one_path_segment(dashboard):
    with pytest.raises(DashboardError) as caught:
        dashboard.get_policy("../requests")
    assert caught.value.path == "/api/portal/policies/..%2Frequests"


def test_server_error_on_get_is_retried_then_succeeds(dashboard, state):
    state.add_fault("GET", "/api/portal/catalogue", status=500, times=2)
    assert isinstance(dashboard.get_catalogue(), dict)
    assert calls(state, "GET", "/api/portal/catalogue") == 3


def test_server_error_on_get_after_the_last_try_raises(sandbox, state):
    state.add_fault("GET", "/api/portal/catalogue", status=503, times=10)
    with (
        Dashboard(sandbox.url, SANDBOX_SECRET, retries=2, backoff=0.001) as client,
        pytest.raises(DashboardServerError) as caught,
    ):
        client.get_catalogue()
    assert caught.value.status == 503
    assert caught.value.retryable is True
    assert calls(state, "GET", "/api/portal/catalogue") == 3


def test_server_error_on_approve_is_not_retried(dashboard, state, policies, alice):
    request = new_request(dashboard, state, alice, policies["Free"])
    path = f"/api/portal/requests/approve/{request.id}"
    state.add_fault("PUT", path, status=500)
    with pytest.raises(DashboardServerError):
        dashboard.approve_key_request(request)
    assert calls(state, "PUT", path) == 1
    approval = dashboard.approve_key_request(request)
    assert approval.already_processed is False
    assert len(approval.key_ids) == 1


def test_hang_longer_than_read_timeout_is_a_timeout(sandbox, state):
    state.add_fault("GET", "/api/portal/catalogue", hang=1.0, times=5)
    with (
        Dashboard(sandbox.url, SANDBOX_SECRET, read_timeout=0.2, retries=1, backoff=0) as client,
        pytest.raises(DashboardTimeout) as caught,
    ):
        client.get_catalogue()
    assert isinstance(caught.value, DashboardUnavailable)
    assert caught.value.retryable is True


def test_approve_timeout_is_not_retried(dashboard, state, policies, alice):
    request = new_request(dashboard, state, alice, policies["Free"])
    path = f"/api/portal/requests/approve/{request.id}"
    state.add_fault("PUT", path, hang=1.0, times=5)
    with (
        Dashboard(dashboard.base_url, SANDBOX_SECRET, read_timeout=0.2, backoff=0) as client,
        pytest.raises(DashboardTimeout),
    ):
        client.approve_key_request(request)
    # The hung call is logged only when it ends, so count the fault's uses instead.
    (fault,) = state.faults()
    assert fault["times"] == 4


def test_connection_refused_is_unavailable():
    with (
        Dashboard(f"http://127.0.0.1:{free_port()}", SANDBOX_SECRET, backoff=0) as client,
        pytest.raises(DashboardUnavailable) as caught,
    ):
        client.ping()
    assert caught.value.status is None
    assert caught.value.retryable is True
    assert SANDBOX_SECRET not in str(caught.value)


def test_approve_is_retried_only_when_the_connection_never_opened():
    session = RecordingSession()
    request = KeyRequest(id="64b000000000000000000101", developer_id="64b0000000000000000000a4")
    url = f"http://127.0.0.1:{free_port()}"
    with (
        Dashboard(url, SANDBOX_SECRET, retries=2, backoff=0, session=session) as client,
        pytest.raises(DashboardUnavailable),
    ):
        client.approve_key_request(request)
    assert session.attempts == 3


def test_ping_succeeds_and_names_the_organisation_served(dashboard, state):
    assert dashboard.ping() == state.org_id


def test_credentials_never_leave_the_client(sandbox, state, policies, alice, caplog):
    caplog.set_level(logging.DEBUG)
    session = RecordingSession()
    names = ("Enterprise", "Partner Reports", "Partner OAuth")
    with Dashboard(sandbox.url, SANDBOX_SECRET, session=session, backoff=0) as client:
        requests_ = [new_request(client, state, alice, policies[name]) for name in names]
        approvals = [client.approve_key_request(r) for r in requests_]
        agains = [client.approve_key_request(r) for r in requests_]
        developer = client.get_developer(alice.id)
        with pytest.raises(DashboardError) as caught:
            client.get_key_request("does-not-exist")
    assert [a.already_processed for a in approvals] == [False, False, False]
    assert all(a.key_ids for a in approvals)
    assert [a.key_ids for a in agains] == [a.key_ids for a in approvals]
    assert all(a.already_processed for a in agains)
    assert approvals[2].key_ids == developer.oauth_clients[policies["Partner OAuth"].id]
    answers = [json.loads(b) for b in session.bodies if b"RawKey" in b or b"client_id" in b]
    answers = [a for a in answers if "RawKey" in a or "secret" in a]
    assert len(answers) == 3
    leaked = [a["RawKey"] for a in answers if "RawKey" in a]
    leaked += [a["Password"] for a in answers if a.get("Password")]
    leaked += [a["secret"] for a in answers if "secret" in a]
    assert len(leaked) == 4
    texts = [
        *map(repr, approvals),
        *map(repr, agains),
        *(repr(r.raw) for r in requests_),
        repr(developer),
        repr(developer.raw),
        str(caught.value),
        repr(caught.value),
        caplog.text,
    ]
    for text in texts:
        assert SANDBOX_SECRET not in text
        assert "RawKey" not in text
        for value in leaked:
            assert value not in text


def test_developer_raw_drops_passwords_and_oauth_secrets():
    developer = Developer.from_json(
        {
            "_id": "d1",
            "email": "dev@example.com",
            "password": "hunter2",
            "PWHistory": ["old-hash"],
            "api_keys": {"k1": ["p1"]},
            "oauth_clients": {"p1": [{"client_id": "c1", "secret": "s3cr3t"}]},
        }
    )
    assert developer.id == "d1"
    assert developer.keys == {}  # `api_keys` maps API id -> key id: not read as `keys`
    assert developer.oauth_clients == {"p1": ("c1",)}
    text = repr(developer.raw)
    for secret in ("hunter2", "old-hash", "s3cr3t"):
        assert secret not in text
    assert developer.raw["oauth_clients"]["p1"][0]["client_id"] == "c1"


def test_key_request_tolerates_old_and_missing_fields():
    request = KeyRequest.from_json(
        {"_id": "r1", "for_plan": "p1", "apply_policies": [], "fields": None, "by_user": "d1"}
    )
    assert request.id == "r1"
    assert request.policies == ("p1",)
    assert request.fields == {}
    assert request.developer is None
    assert request.catalogue_entry is None
    assert KeyRequest.from_json({}).policies == ()
    assert Policy.from_json({"_id": "p1", "is_inactive": True}).active is False


def test_already_processed_is_matched_by_message_whatever_the_status():
    for status in (200, 400, 403, 409, 500):
        error = error_for(status, "Key Request has ALREADY been processed.", method="PUT")
        assert isinstance(error, AlreadyProcessed)
    assert isinstance(error_for(422, "nope"), BadRequest)
    assert isinstance(error_for(504, "gateway"), DashboardServerError)


def test_errors_survive_pickling():
    error = error_for(404, "Could not retrieve key detail.", method="GET", path="/api/x?y=1")
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert type(copy) is NotFound
    assert (copy.status, copy.method, copy.path, copy.message) == (
        404,
        "GET",
        "/api/x",
        "Could not retrieve key detail.",
    )


def test_long_messages_are_truncated():
    error = error_for(400, "x" * 1000)
    assert len(error.message) == 200


def test_bad_secret_is_refused_without_echoing_it():
    with pytest.raises(ValueError) as caught:
        Dashboard("http://127.0.0.1:1", "line\nbreak-secret")
    assert "break-secret" not in str(caught.value)


def test_approval_is_plain_data():
    assert Approval(already_processed=True) == Approval(True, (), ())
