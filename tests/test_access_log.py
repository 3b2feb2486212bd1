"""Webhook tokens never reach a log line, however the path is spelled; every line is JSON."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from approver import config, logs
from approver.errors import ConfigError
from tests.conftest import WEBHOOK_TOKEN
from tests.web_support import Web

T = WEBHOOK_TOKEN
# Other spellings of a hook path that reach the app (or its 404) with the token in them.
SPELLINGS = [
    f"/hooks/tyk/{T}", f"/hooks/tyk//{T}", f"/hooks//tyk/{T}", f"/hooks/tyk/%2F{T}",
    f"/hooks/tyk/./{T}", f"/Hooks/tyk/{T}", f"/HOOKS/TYK/{T}", f"/hooks%2Ftyk%2F{T}",
    f"/hooks/portal/{T}", f"/hooks/tyk/{T}%0A", f"/hooks/tyk/{T}%0Ax", f"/hooks/tyk/%0A{T}",
    f'/hooks/tyk/{T}%22', f'/hooks/tyk/%22{T}', f"/hooks/tyk/{T}%5C", f"/hooks/tyk/{T}%22%7D",
    f"/hooks/tyk/{T}/", f"/hooks/tyk/{T}?token={T}", f"/x?next=/hooks/tyk/{T}",
    f"/billing/events?{T}", f"/status/{T}", f"/hooks/tyk/{T}%00", f"/hooks/tyk/{T}%E2%80%A8",
]


@pytest.fixture(scope="module")
def web(tmp_path_factory, redis_server):
    from approver.config import Settings

    server = Web(Settings(redis_url=redis_server.url, dashboard_url="http://127.0.0.1:9"),
                 tmp_path_factory.mktemp("web"))
    server.start("--workers", "1")
    yield server
    server.stop()


def request_line(path: str, method: str = "POST") -> bytes:
    body = b'{"event": "other.event", "data": {"id": "x"}}'
    return (f"{method} {path} HTTP/1.1\r\nHost: approver\r\nContent-Type: application/json\r\n"
            f"Referer: https://approver.example{path}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


@pytest.mark.parametrize("path", SPELLINGS)
def test_no_spelling_of_a_hook_path_is_redirected_or_logged_with_its_token(web, path):
    answer = web.raw(request_line(path))
    status = int(answer.split(b" ", 2)[1])
    assert not 300 <= status < 400, answer[:300]
    assert T.encode() not in answer


def test_every_line_of_the_web_tiers_output_is_json_without_a_token(web):
    for path in SPELLINGS:
        web.raw(request_line(path))
        web.raw(request_line(path, "GET"))
    web.raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    output = web.output()
    assert T not in output
    access = 0
    for line in output.split("\n")[:-1]:
        entry = json.loads(line)  # every line, startup lines included
        assert isinstance(entry, dict)
        access += "path" in entry
    assert access >= 2 * len(SPELLINGS)


def test_redact_hides_configured_secrets_anywhere(monkeypatch):
    monkeypatch.setattr(logs, "_known", None, raising=False)
    monkeypatch.setattr(logs, "_values", set(), raising=False)
    logs.redact_values(["s3cret-value-0123456789", "short"])
    line = logs.redact("token=s3cret-value-0123456789 in a 'quoted s3cret-value-0123456789'")
    assert "s3cret" not in line and line.count("[redacted]") == 2
    assert logs.redact("a short word") == "a short word"  # too short to be a secret


def test_every_process_redacts_its_configured_secrets_once_it_has_a_runtime(
        monkeypatch, settings):
    # Web tier, worker, or a command that calls the Dashboard (reconcile, replay, review).
    from approver.pipeline.runtime import Runtime

    monkeypatch.setattr(logs, "_known", None, raising=False)
    monkeypatch.setattr(logs, "_values", set(), raising=False)
    secret = "dashboard-secret-only-this-test-0123456789"
    Runtime(settings.with_(dashboard_secret=secret))
    assert secret not in logs.redact(f"the Dashboard answered 401 for {secret}")


@pytest.mark.parametrize(("text", "kept"), [
    ("Authorization: Bearer tok-0123456789", "Authorization: Bearer [redacted]"),
    ("authorization: basic dXNlcjpwYXNz", "authorization: basic [redacted]"),
    ("Authorization: tok-0123456789", "Authorization: [redacted]"),
    ("X-Approver-Token: Token tok-0123456789", "X-Approver-Token: Token [redacted]"),
    ("sent with Bearer tok-0123456789", "sent with Bearer [redacted]"),
    ("{'Authorization': 'Bearer tok-0123456789'}", "{'Authorization': 'Bearer [redacted]'}"),
    ("{'RawKey': 'tok-0123456789'}", "{'RawKey': '[redacted]'}"),
    ("{'password': 'tok-0123456789', 'x': 1}", "{'password': '[redacted]', 'x': 1}"),
    ('{"secret": "tok-0123456789"}', '{"secret": "[redacted]"}'),
])
def test_redact_hides_credentials_after_a_scheme_word_and_in_python_reprs(monkeypatch, text,
                                                                          kept):
    monkeypatch.setattr(logs, "_known", None, raising=False)  # by pattern alone
    assert logs.redact(text) == kept


# Pieces of text that each pattern of approver.logs reacts to, in several cases and spellings.
_PIECES = ["/hooks", "/HOOKS", "/hoOks", "/", "%2f", "%2F", "tyk", "portal", "/status", "act",
           "ACT", "bearer ", "Bearer", "authorization", "Authorization:", "x-approver-token",
           "rawkey", "password", "SECRET", "=", ":", " ", '"', "'", "#", "\\", "?", "&", ",",
           "}", "basic ", "token ", "tok-0123456789", "\u017f", "\u212a", "\u00e9", "\n",
           "[redacted]"]


@hsettings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=14).map("".join))
def test_redact_checks_words_first_and_replaces_as_every_pattern_in_turn(text):
    # The word checks only spare substitutions that would replace nothing.
    expected = text
    for _, pattern, replacement in logs._PATTERNS:
        expected = pattern.sub(replacement, expected)
    saved = logs._known
    try:
        logs._known = None
        assert logs.redact(text) == expected
    finally:
        logs._known = saved


@pytest.mark.parametrize("path", [p.replace("%2F", "/").replace("%0A", "\n") for p in SPELLINGS
                                  if f"/{T}" in p.replace("%2F", "/")])
def test_redact_hides_the_token_after_any_spelling_of_a_hook_route(monkeypatch, path):
    monkeypatch.setattr(logs, "_known", None, raising=False)  # by route alone
    assert T not in logs.redact(f"GET {path.partition('?')[0]} HTTP/1.1")


@pytest.mark.parametrize("token", [
    "abc/def+ghi=jklmnopqrst",  # openssl rand -base64
    "token with spaces 0123456",
    "token%2Fencoded0123456789",
    "t\u00f6ken-0123456789abcdef",
    "token.with.dots.0123456789",
])
@pytest.mark.parametrize("name", ["APPROVER_WEBHOOK_TOKENS", "APPROVER_PORTAL_WEBHOOK_TOKENS"])
def test_tokens_outside_the_url_safe_alphabet_are_refused_at_start(name, token):
    with pytest.raises(ConfigError, match=f"{name}.*letters, digits"):
        config.from_env({name: f"good-token-0123456789,{token}"})
