"""Tyk Dashboard API client: the Dashboard class, its errors and models."""

from approver.tyk.client import Dashboard
from approver.tyk.errors import (
    AlreadyProcessed,
    BadRequest,
    DashboardError,
    DashboardServerError,
    DashboardTimeout,
    DashboardUnavailable,
    DeleteByHashRefused,
    Forbidden,
    NotFound,
    Unauthorized,
)
from approver.tyk.models import Approval, Developer, KeyRequest, Policy

__all__ = [
    "AlreadyProcessed",
    "Approval",
    "BadRequest",
    "Dashboard",
    "DashboardError",
    "DashboardServerError",
    "DashboardTimeout",
    "DashboardUnavailable",
    "DeleteByHashRefused",
    "Developer",
    "Forbidden",
    "KeyRequest",
    "NotFound",
    "Policy",
    "Unauthorized",
]
