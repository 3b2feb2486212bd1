"""The one exception family of tyk-approver."""


class ApproverError(Exception):
    """Base of every error this service raises on purpose."""


class ConfigError(ApproverError):
    """A setting is missing or invalid; the message names the variable."""
