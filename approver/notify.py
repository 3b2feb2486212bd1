"""The dotted paths notification jobs name (`approver.notify.deliver`, `.announce`): kept for
jobs already queued in Redis and a rolling upgrade's workers; the code is `pipeline.notify`."""

from approver.pipeline.notify.delivery import deliver
from approver.pipeline.notify.events import announce

__all__ = ["announce", "deliver"]
