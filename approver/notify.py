"""The dotted path notification jobs name (`approver.notify.deliver`): kept for jobs already
queued in Redis and a rolling upgrade's workers; the code is `pipeline.notify.delivery`."""

from approver.pipeline.notify.delivery import deliver

__all__ = ["deliver"]
