"""Telling people about decisions: webhook and Slack notifications (`events` chooses and
queues them, `delivery` sends them) and email (`mail`), each sent by RQ jobs of its own."""

from approver.pipeline.notify.delivery import deliver, send, sign, signing_key, slack_message
from approver.pipeline.notify.events import (
    DELIVER,
    EVENT_TYPES,
    KINDS,
    SLACK,
    WEBHOOK,
    NotifyError,
    developer_link,
    NotifySettings,
    enqueue_notifications,
    event_id,
    events_for,
    ref,
    request_link,
    wanted,
)

__all__ = [
    "DELIVER",
    "EVENT_TYPES",
    "KINDS",
    "SLACK",
    "WEBHOOK",
    "NotifyError",
    "NotifySettings",
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
    "wanted",
]
