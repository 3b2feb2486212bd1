"""The dotted paths RQ jobs name: kept here, where jobs already queued in Redis (and the
workers of a rolling upgrade) look for them; the entry points are `pipeline.jobs`."""

from approver.pipeline.jobs import (
    billing_check,
    billing_event,
    decide_claimed,
    decide_request,
    past_due_check,
    reconcile_pass,
    validate,
    validator_answer,
)

__all__ = ["billing_check", "billing_event", "decide_claimed", "decide_request",
           "past_due_check", "reconcile_pass", "validate", "validator_answer"]
