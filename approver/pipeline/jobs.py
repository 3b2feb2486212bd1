"""Thin RQ entry points taking plain ids."""

from __future__ import annotations

import contextvars
import functools
import logging
import time

from rq import get_current_job

from approver.errors import ApproverError
from approver.pipeline import (
    billing,
    deadlines,
    decide,
    grants,
    health,
    metrics,
    reconcile,
    review,
    runtime,
    validators,
)
from approver.state import LOCK_TTL, Locked

log = logging.getLogger(__name__)


def _job(function):
    """An RQ entry point: run in a context of its own, so the ids it binds to log lines
    (logs.bind) end with it; an error no retry can fix fails the job at once."""

    @functools.wraps(function)
    def job(*args, **kwargs):
        try:
            return contextvars.copy_context().run(function, *args, **kwargs)
        except Exception as exc:
            current = get_current_job()
            if current is not None and decide.permanent(exc):
                current.retries_left = 0  # RQ reads it when the job fails: no retry
            raise

    return job


@_job
def decide_request(request_id: str, trigger: str = "webhook") -> dict:
    """RQ job: decide and apply one key request."""
    rt = runtime.current()
    try:
        result = _run_when_free(rt, request_id, trigger)
    except Locked:
        # Still held after a lock's lifetime: its holder is alive and busy (it renews it)
        # and will finish the request; the reconciler is there if it does not.
        log.info("key request %s is locked by another worker; leaving it", request_id)
        return {"request_id": request_id, "state": "locked"}
    job = get_current_job()
    if result.applied_now and trigger == "webhook" and job and job.enqueued_at:
        # The job was queued when the webhook arrived: this is webhook -> applied.
        metrics.observe_applied(rt.redis, time.time() - job.enqueued_at.timestamp())
    return result.to_dict()


def _run_when_free(rt, request_id: str, trigger: str):
    """Run the pipeline; if another holds the request, wait for it (or its lock to lapse).

    A lock left by a worker that died expires within LOCK_TTL; waiting here, rather than
    giving up, means the request is not left for the next reconciler pass.
    """
    return when_free(lambda: decide.run(rt, request_id, trigger))


def when_free(call):
    """`call()`, again while it raises Locked, for at most a lock's lifetime."""
    deadline = time.monotonic() + LOCK_TTL + 2
    while True:
        try:
            return call()
        except Locked:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


@_job
def decide_claimed(request_id: str, taken: dict) -> dict:
    """RQ job: carry out a person's claimed decision on a request in the review inbox."""
    rt = runtime.current()
    result = when_free(lambda: decide.decide_by_person(
        rt, request_id, taken["outcome"], taken["reason"], taken["by"], taken["via"],
        **review.audit_fields(taken)))
    rt.store.settle_claim(request_id, taken["claim_id"], result.to_dict())
    return result.to_dict()


@_job
def billing_event(event: dict) -> dict:
    """RQ job: act on a verified billing event (plain JSON, as the web tier queued it)."""
    return billing.handle(runtime.current(), event)


@_job
def billing_check(developer_id: str) -> dict:
    """RQ job: revoke the developer's paid keys if their billing state now calls for it
    (scheduled when a `canceled` settles or a grace period ends; queued after an approval
    made while billing was not paid)."""
    return billing.check(runtime.current(), developer_id)


@_job
def past_due_check(developer_id: str, occurred_at: str) -> dict:
    """RQ job: revoke paid keys if the developer is still past due after the grace period
    (queued by earlier versions)."""
    return billing.past_due_check(runtime.current(), developer_id, occurred_at)


@_job
def reconcile_pass() -> dict:
    """RQ job: one reconciler pass (workers queue one every APPROVER_RECONCILE_INTERVAL)."""
    rt = runtime.current()
    health.publish_health(rt)
    # Deadlines need no Dashboard (an expiry's deny is queued as a claim): before the pass.
    try:
        passed = deadlines.run(rt) | {"grants": grants.run(rt)}
    except Exception as exc:  # the reconciler runs all the same; the next pass tries again
        log.exception("deadlines pass failed: %s", type(exc).__name__)
        passed = {"error": type(exc).__name__}
    try:
        return reconcile.run(rt).to_dict() | {"deadlines": passed}
    except ApproverError as exc:
        # The Dashboard is away: the next pass tries again; /readyz and `approver status`
        # show what publish_health saw.
        log.warning("reconciler pass failed: %s", exc)
        return {"error": str(exc)}


@_job
def validate(request_id: str, approvals_id: str, step: int) -> dict:
    """RQ job: ask the validator a request's step names (retried while it does not answer)."""
    return validators.validate(runtime.current(), request_id, approvals_id, step)


@_job
def validator_answer(name: str, answer: dict) -> dict:
    """RQ job: a validator's later answer (checked and signed at the web tier), settled."""
    return validators.late_answer(runtime.current(), name, answer)
