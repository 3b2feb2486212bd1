"""Slack's Web API, as the approver uses it: post a request waiting for people with
buttons, update it once decided, answer a person privately, open the deny modal, look up who
clicked (`client`); the messages themselves, with developer text made inert (`blocks`)."""

from approver.slack.blocks import decided, deny_modal, digest, escape, inert, waiting
from approver.slack.client import SlackClient, SlackError

__all__ = ["SlackClient", "SlackError", "decided", "deny_modal", "digest", "escape", "inert",
           "waiting"]
