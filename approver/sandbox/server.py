"""Serving the sandbox Dashboard: in a background thread (`serve`) or blocking (`run`)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from approver.sandbox.app import create_app
from approver.sandbox.state import Sandbox


class _QuietHandler(WSGIRequestHandler):
    """A request handler that does not print a line per request (tests, benchmarks)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class SandboxServer:
    """A threaded werkzeug server running a sandbox app in a daemon thread."""

    def __init__(self, app: Flask, host: str = "127.0.0.1", port: int = 0, quiet: bool = True):
        self.app = app
        self._server: BaseWSGIServer = make_server(
            host, port, app, threaded=True, request_handler=_QuietHandler if quiet else None
        )
        self.host = host
        self.port: int = self._server.server_port
        self.url = _url(host, self.port)
        # A short poll interval makes shutdown() quick, which test suites feel per fixture.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()

    @property
    def sandbox(self) -> Sandbox:
        """The app's Sandbox state."""
        return self.app.extensions["sandbox"]

    def shutdown(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SandboxServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def serve(app: Flask, host: str = "127.0.0.1", port: int = 0, quiet: bool = True) -> SandboxServer:
    """Start `app` on host:port (0 = a free port) in a daemon thread; return the server."""
    return SandboxServer(app, host, port, quiet)


def run(
    host: str = "127.0.0.1",
    port: int = 3000,
    secret: str = "",
    seed: str | Path | dict | None = None,
    webhook_url: str | None = None,
) -> None:
    """Serve a sandbox Dashboard in the foreground until interrupted."""
    app = create_app(secret=secret, seed=seed, webhook_url=webhook_url)
    server = make_server(host, port, app, threaded=True)
    print(
        f"sandbox Tyk Dashboard on {_url(host, server.server_port)} "
        f"(org {app.extensions['sandbox'].org_id})",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
