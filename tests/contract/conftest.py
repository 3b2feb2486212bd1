"""Fixtures of the contract tests (the shared ones are in tests/conftest.py)."""

import queue
import threading

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


@pytest.fixture
def receiver():
    """A local HTTP server that queues every request it receives as (method, headers, body)."""
    got: queue.Queue = queue.Queue()

    @Request.application
    def app(request):
        got.put((request.method, dict(request.headers), request.get_data()))
        return Response("ok")

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hooks/tyk/token123", got
    server.shutdown()
    server.server_close()
    thread.join(5)
