"""tyk-approver: decides Tyk developer-portal key requests by rules."""

__version__ = "0.1.0"
