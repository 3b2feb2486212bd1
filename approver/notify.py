"""The dotted paths notification jobs name (`approver.notify.deliver`, `.announce`,
`.slack_post`, `.slack_update`, `.slack_act`, `.slack_digest`, `.slack_note`): kept for
jobs already queued in Redis and a rolling upgrade's workers; the code is `pipeline.notify`."""

from approver.pipeline.notify.announce import announce
from approver.pipeline.notify.delivery import deliver
from approver.pipeline.slackapp import act as slack_act
from approver.pipeline.slackapp import digest as slack_digest
from approver.pipeline.slackapp import note as slack_note
from approver.pipeline.slackapp import post as slack_post
from approver.pipeline.slackapp import update as slack_update

__all__ = ["announce", "deliver", "slack_act", "slack_digest", "slack_note", "slack_post",
           "slack_update"]
