"""A simulated Tyk Dashboard (the portal API subset the approver uses) for demo, tests, bench."""

from approver.sandbox.app import create_app
from approver.sandbox.server import SandboxServer, run, serve
from approver.sandbox.state import Sandbox, SandboxError

__all__ = ["Sandbox", "SandboxError", "SandboxServer", "create_app", "run", "serve"]
