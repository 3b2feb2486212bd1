"""A step handed to an outside system: a local validator on 127.0.0.1 that approves,
denies, times out, answers nonsense, or answers later at the documented endpoint."""

import base64
import json
import threading
import time

import pytest
from flask import Flask, request

from approver import state as st
from approver.billing.signatures import verify_standard
from approver.config import Validator
from approver.pipeline import steps
from approver.pipeline.notify.delivery import sign
from approver.sandbox import serve
from approver.state import accounts
from tests.conftest import drain
from tests.console_support import PASSWORD
from tests.rules_support import write
from tests.test_review import APPROVE, in_review

SECRET = "whsec_" + base64.b64encode(b"validator-secret-0123456789abcdef").decode()
RULES = """\
version: 1
rules:
  - id: crm-then-owners
    then: review
    reason: The CRM, then an owner.
    approvals:
      - validator: crm
      - group: owners
"""


class Crm:
    """What the local validator answers, and what it was sent (signature checked)."""

    def __init__(self):
        self.answer = ({"decision": "approve", "reason": "customer in good standing",
                        "facts": {"crm.account": "ACME-7"}}, 200)
        self.calls = []
        self.stop = threading.Event()


@pytest.fixture(scope="module")
def crm_server():
    crm = Crm()
    app = Flask("crm")

    @app.post("/validate")
    def validate():
        raw = request.get_data()
        verify_standard([SECRET], request.headers, raw)  # raises (500) if not ours
        crm.calls.append(json.loads(raw))
        body, status = crm.answer
        if body == "slow":
            crm.stop.wait(3)  # past the service's timeout
            return {"decision": "approve"}, 200
        return (body, status) if not isinstance(body, str) else (body, status, {
            "content-type": "application/json"})

    server = serve(app)
    server.crm = crm
    yield server
    crm.stop.set()
    server.shutdown()


@pytest.fixture
def crm(crm_server):
    crm = crm_server.crm
    crm.__init__()
    return crm


@pytest.fixture
def settings(settings, crm_server, tmp_path):
    return settings.with_(
        rules_path=write(tmp_path / "rules" / "crm.yaml", RULES), admins_group="api-admins",
        public_url="https://approver.example.com",
        validators=(Validator("crm", crm_server.url + "/validate", SECRET, 0.5),))


def current(rt, ref):
    state = rt.store.state(ref)
    return steps.standing(rt.store, ref, state)


def events(rt, ref, name):
    return [e for e in rt.store.entries(100, request_id=ref) if e["event"] == name]


def test_a_validator_that_approves_passes_its_step_with_its_facts(rt, sandbox, work, crm):
    ref = in_review(rt, sandbox)
    drain(rt, work)
    [call] = crm.calls
    assert call["type"] == "key_request.validate"
    assert call["data"]["key_request_id"] == ref and call["data"]["validator"] == "crm"
    assert call["data"]["developer"]["email"] and "facts" in call["data"]
    now = current(rt, ref)
    assert now["current"] == 1 and now["steps"][0]["approved_by"] == ["validator:crm"]
    assert rt.store.state(ref)["validator_facts"] == {"crm": {"crm.account": "ACME-7"}}
    [validated] = events(rt, ref, "validated")
    assert (validated["outcome"], validated["facts"]) == ("approve", {"crm.account": "ACME-7"})
    assert sandbox.app.sandbox.calls(method="PUT", path=APPROVE + ref) == []  # owners next
    accounts.add(rt.store, "olga", PASSWORD, "olga@corp.example", ("owners",))
    olga = steps.Person("local:olga", ("owners",), "olga@corp.example")
    taken = steps.act(rt.store, ref, "approve", "", olga, "cli", "here")
    steps.review.enqueue_claim(rt.queue, ref, taken, ())
    drain(rt, work)
    assert rt.store.state(ref)["outcome"] == "approve"
    assert len(sandbox.app.sandbox.calls(method="PUT", path=APPROVE + ref)) == 1


def test_a_validator_that_denies_ends_the_request(rt, sandbox, work, crm):
    crm.answer = ({"decision": "deny", "reason": "account closed"}, 200)
    ref = in_review(rt, sandbox)
    drain(rt, work)
    state = rt.store.state(ref)
    assert (state["state"], state["outcome"], state["decided_by"], state["reason"]) == (
        st.APPLIED, "deny", "validator:crm", "account closed")


@pytest.mark.parametrize("answer, why", [
    (("slow", 200), "no answer (ReadTimeout)"),
    (("{not json", 200), "bad answer"),
    (({"decision": "approve!"}, 200), "bad answer: decision is 'approve!'"),
    (({"error": "down"}, 500), "answered 500"),
], ids=["timeout", "not-json", "bad-decision", "error"])
def test_no_usable_answer_is_retried_then_left_to_people(rt, sandbox, work, crm, answer,
                                                         why):
    crm.answer = answer
    ref = in_review(rt, sandbox)
    drain(rt, work)
    assert len(crm.calls) == 1 + len(rt.settings.retry_delays)  # retried, with back-off
    [unknown] = events(rt, ref, "validator_unknown")
    assert why in unknown["why"] and "stays with people" in unknown["why"]
    state = rt.store.state(ref)
    assert state["state"] == st.IN_REVIEW and current(rt, ref)["current"] == 0
    request = {**state, "standing": current(rt, ref)}
    owner = steps.Person("local:olga", ("owners",), "olga@corp.example")
    admin = steps.Person("local:ada", ("api-admins",), "ada@corp.example")
    assert steps.may_decide(owner, request, "api-admins") is not None
    assert steps.may_decide(admin, request, "api-admins") is None


def late(client, body: dict, secret=SECRET, name="crm"):
    raw = json.dumps(body).encode()
    msg_id, stamp = f"msg_late{time.time_ns()}", int(time.time())
    return client.post(f"/validators/{name}/answers", data=raw, headers={
        "content-type": "application/json", "webhook-id": msg_id,
        "webhook-timestamp": str(stamp), "webhook-signature": sign(secret, msg_id, stamp, raw)})


def test_a_validator_that_answers_later_at_the_endpoint(rt, sandbox, work, crm, client):
    crm.answer = ({"status": "checking"}, 202)
    ref = in_review(rt, sandbox)
    drain(rt, work)
    [pending] = events(rt, ref, "validator_pending")
    assert pending["by"] == "validator:crm"
    ask_id = crm.calls[0]["data"]["ask_id"]
    answer = {"key_request_id": ref, "ask_id": ask_id, "decision": "approve",
              "reason": "checked by hand", "facts": {"crm.tier": "gold"}}
    other = "whsec_" + base64.b64encode(b"someone-else-secret-0123456789ab").decode()
    assert late(client, answer, secret=other).status_code == 401
    assert late(client, answer, name="erp").status_code == 404
    assert late(client, {**answer, "decision": "maybe"}).status_code == 400
    assert late(client, {**answer, "ask_id": "nope"}).status_code == 400
    assert late(client, answer).status_code == 202
    drain(rt, work)
    assert current(rt, ref)["current"] == 1
    # Once counted, a second answer for the same step changes nothing.
    assert late(client, {**answer, "decision": "deny"}).status_code == 202
    drain(rt, work)
    assert rt.store.state(ref)["state"] == st.IN_REVIEW
    assert events(rt, ref, "validator_ignored")
