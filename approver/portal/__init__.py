"""Tyk (Enterprise) Developer Portal admin API client: the Portal class and its models."""

from approver.portal.client import Portal
from approver.portal.models import AccessRequest, Decision

__all__ = ["AccessRequest", "Decision", "Portal"]
