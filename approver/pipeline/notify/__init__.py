"""Telling people about decisions: webhook and Slack notifications (`events` chooses and
queues them, `delivery` sends them) and email (`mail`), each sent by RQ jobs of its own."""

from approver.pipeline.notify.announce import ANNOUNCE, announce, tell
from approver.pipeline.notify.delivery import deliver, send, sign, signing_key, slack_message
from approver.pipeline.notify.events import (
    DELIVER,
    EVENT_TYPES,
    KINDS,
    SLACK,
    WEBHOOK,
    NotifyError,
    NotifySettings,
    developer_link,
    enqueue_notifications,
    event_id,
    events_for,
    ref,
    request_link,
    wanted,
)

__all__ = [
    "ANNOUNCE",
    "DELIVER",
    "EVENT_TYPES",
    "KINDS",
    "SLACK",
    "WEBHOOK",
    "NotifyError",
    "NotifySettings",
    "announce",
    "deliver",
    "developer_link",
    "enqueue_notifications",
    "event_id",
    "events_for",
    "ref",
    "request_link",
    "send",
    "sign",
    "signing_key",
    "slack_message",
    "tell",
    "wanted",
]
