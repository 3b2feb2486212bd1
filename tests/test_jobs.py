"""What a job leaves behind when it fails, what it leaves on the log lines of the next, and
the dotted paths jobs are queued under."""

import json
import logging

from rq.registry import FailedJobRegistry, ScheduledJobRegistry

from approver import cli, logs
from approver.pipeline import decide, reconcile
from approver.tyk import BadRequest, DashboardServerError, DashboardUnavailable, Forbidden
from tests.conftest import WEBHOOK_TOKEN

CAROL = "carol@gmail.com"
FREE = "64b0000000000000000000b1"


def run(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def deliver(client, request):
    client.post(f"/hooks/tyk/{WEBHOOK_TOKEN}",
                json={"event": "key_request_event.submitted", "data": request})


def test_a_request_tyk_refuses_as_sent_fails_at_once_with_its_cause_shown(
        capsys, client, sandbox, rt, work):
    # The demo's old hint: a policy id Tyk stores but answers 400 "Invalid policy ID." for.
    request = sandbox.app.sandbox.create_key_request(CAROL, ["<policy id>"], {"use_case": "x"})
    deliver(client, request)
    work()
    job_id = f"kr-{request['id']}"
    assert job_id in FailedJobRegistry(queue=rt.queue)
    assert job_id not in ScheduledJobRegistry(queue=rt.queue)  # no retry of a 400
    assert len(sandbox.app.sandbox.calls(method="GET", path="/api/portal/policies/")) == 1

    state = rt.store.state(request["id"])
    assert state["state"] == "error"
    assert "HTTP 400: Invalid policy ID." in state["error"]
    _, out, _ = run(capsys, "decisions", "list", "--failed", "--json")
    [failed] = [json.loads(line) for line in out.splitlines()]
    assert failed["request_id"] == request["id"]
    assert "HTTP 400: Invalid policy ID." in failed["error"]
    code, out, _ = run(capsys, "decisions", "show", request["id"], "--json")
    shown = json.loads(out)
    assert code == 0 and shown["state"]["state"] == "error"
    assert [h["event"] for h in shown["history"]] == ["failed"]
    assert "Invalid policy ID." in shown["history"][0]["error"]
    # The reconciler leaves it to a human (`approver replay`), not to a retry every pass.
    rt.settings = rt.settings.with_(retry_delays=())
    assert request["id"] not in reconcile.run(rt).queued


def test_a_request_decided_after_an_error_no_longer_shows_the_error(client, sandbox, rt, work):
    tyk = sandbox.app.sandbox
    tyk.add_fault("GET", "/api/portal/policies/", status=400, times=1,
                  message="Invalid policy ID.")
    request = tyk.create_key_request(CAROL, [FREE], {"use_case": "x"})
    deliver(client, request)
    work()
    assert rt.store.state(request["id"])["state"] == "error"
    tyk.clear_faults()
    rt.queue.connection.delete(f"rq:job:kr-{request['id']}")
    deliver(client, request)
    work()
    state = rt.store.state(request["id"])
    assert state["state"] == "in_review" and "error" not in state


def test_errors_are_permanent_only_when_a_retry_cannot_help():
    permanent = decide.permanent
    assert permanent(BadRequest("Invalid policy ID.", status=400))
    assert permanent(BadRequest("expected a JSON object", status=200))  # a bad shape
    assert not permanent(BadRequest("slow down", status=429))
    assert not permanent(BadRequest("conflict", status=409))
    assert not permanent(Forbidden("no portal write permission", status=403))
    assert not permanent(DashboardServerError("storage", status=500))
    assert not permanent(DashboardUnavailable("connection failed"))
    assert not permanent(ValueError("a bug is retried, visibly"))


def test_replay_refuses_an_id_nobody_knows(capsys, rt, sandbox):
    for unknown in ("kr-nonexistent", "64b0000000000000000000ff"):
        code, out, err = run(capsys, "replay", unknown)
        assert code == 2 and "queued" not in out, (unknown, out)
        assert "neither a failed job" in err
    assert rt.queue.count == 0


def test_replay_queues_a_pending_request_tyk_knows(capsys, rt, sandbox):
    request = sandbox.app.sandbox.create_key_request(CAROL, [FREE], {"use_case": "x"})
    code, out, _ = run(capsys, "replay", request["id"])
    assert (code, out.strip()) == (0, f"queued kr-{request['id']}")


class _Records(logging.Handler):
    """Keeps the records the service's log filter has seen (ids bound, secrets redacted)."""

    def __init__(self):
        super().__init__()
        self.records = []
        self.addFilter(logs.ContextFilter())

    def emit(self, record):
        self.records.append(record)


def test_ids_bound_by_one_job_are_not_on_the_lines_of_the_next(client, sandbox, rt, work):
    request = sandbox.app.sandbox.create_key_request(CAROL, [FREE], {"use_case": "x"})
    rt.queue.enqueue("approver.jobs.billing_event", {
        "type": "key_request.decision", "id": "evt_1",
        "data": {"key_request_id": request["id"], "decision": "approve", "reason": "paid"}})
    rt.queue.enqueue("approver.jobs.reconcile_pass")
    handler = _Records()
    logging.getLogger().addHandler(handler)
    level = logging.getLogger().level
    logging.getLogger().setLevel(logging.INFO)
    try:
        work()
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(level)
    decided = [r for r in handler.records if r.getMessage().startswith("key request")]
    assert decided and all(r.decision_id for r in decided)  # the billing job's own lines
    later = [r for r in handler.records if r.name == "approver.pipeline.reconcile"]
    assert later, [r.getMessage() for r in handler.records]
    assert [(r.decision_id, r.key_request_id) for r in later] == [(None, None)] * len(later)


def test_one_reconciler_pass_is_queued_per_interval_and_again_once_redis_lost_it(rt):
    from approver.pipeline import enqueue

    assert enqueue.reconcile(rt.queue, 60) is True  # none in the last minute: one now
    assert enqueue.reconcile(rt.queue, 60) is False  # every worker asks every second
    assert [j.func_name for j in rt.queue.jobs] == [enqueue.RECONCILE]
    rt.redis.flushall()  # Redis restarted without its data
    assert enqueue.reconcile(rt.queue, 60) is True


def test_every_job_is_queued_under_a_path_that_finds_its_function():
    """Jobs already in Redis, and the workers of a rolling upgrade, name these paths: each
    is the one the service has always queued, and RQ finds the pipeline's function by it."""
    from rq.utils import import_attribute

    from approver.pipeline import billing, enqueue, jobs, notify, review
    from approver.web import billing as billing_web

    queued = {enqueue.DECIDE: jobs.decide_request, enqueue.RECONCILE: jobs.reconcile_pass,
              review.CLAIM_JOB: jobs.decide_claimed, billing.CHECK: jobs.billing_check,
              "approver.jobs.past_due_check": jobs.past_due_check,
              billing_web.JOB: jobs.billing_event, notify.DELIVER: notify.deliver,
              notify.mail.SEND: notify.mail.send}
    assert sorted(queued) == [
        "approver.jobs.billing_check", "approver.jobs.billing_event",
        "approver.jobs.decide_claimed",
        "approver.jobs.decide_request", "approver.jobs.past_due_check",
        "approver.jobs.reconcile_pass", "approver.mail.send", "approver.notify.deliver"]
    for path, function in queued.items():
        assert import_attribute(path) is function, path

