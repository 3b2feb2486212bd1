"""The dotted path email jobs name (`approver.mail.send`): kept for jobs already queued in
Redis and a rolling upgrade's workers; the code is `pipeline.notify.mail`."""

from approver.pipeline.notify.mail import send

__all__ = ["send"]
