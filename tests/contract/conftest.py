"""Fixtures of the contract tests (the shared ones are in tests/conftest.py)."""

import json

import pytest
from werkzeug.wrappers import Request, Response

from tests.conftest import serving


class Replay:
    """A server that answers each route with a recorded answer, as Tyk sent it."""

    def __init__(self):
        self.routes: dict[tuple[str, str], tuple[int, dict, bytes]] = {}
        self.asked: list[tuple[str, str]] = []

    def answer(self, method: str, path: str, file: str | None = None, *, status: int = 200,
               body=None) -> None:
        """Answer `method path` with a corpus file (a `.http` dump: its status and headers
        too) or with `body`."""
        from tests.contract import corpus

        headers = {"Content-Type": "application/json"}
        if file and file.endswith(".http"):
            status, dumped, text = corpus.http_dump(file)
            headers = {k.title(): v for k, v in dumped.items() if k != "content-length"}
            data = text.encode()
        elif file:
            data = (corpus.CORPUS / file).read_bytes()
        else:
            data = json.dumps(body).encode()
        self.routes[(method, path)] = (status, headers, data)

    def __call__(self, environ, start_response):
        request = Request(environ)
        self.asked.append((request.method, request.path))
        status, headers, data = self.routes.get(
            (request.method, request.path),
            (404, {"Content-Type": "text/plain; charset=utf-8"}, b"404 page not found\n"))
        return Response(data, status=status, headers=headers)(environ, start_response)


@pytest.fixture
def replay():
    """A Replay server on a free port: (its base URL, the Replay)."""
    routes = Replay()
    with serving(routes) as url:
        yield url, routes
