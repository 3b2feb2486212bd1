"""Shared fixtures: a real Redis server, the sandbox Dashboard over real HTTP."""

import pytest

from approver.sandbox import create_app as create_sandbox_app
from approver.sandbox import serve

SANDBOX_SECRET = "sandbox-dashboard-secret-0123456789"


@pytest.fixture
def sandbox():
    """A fresh sandbox Dashboard, seeded with the sample data, on a free loopback port."""
    server = serve(create_sandbox_app(secret=SANDBOX_SECRET))
    yield server
    server.shutdown()
