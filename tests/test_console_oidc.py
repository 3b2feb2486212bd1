"""Single sign-on to the console against a real (minimal) OIDC provider over HTTP."""

from urllib.parse import urlsplit

import pytest
import requests
from joserfc.jwk import RSAKey

from approver import config
from approver.errors import ConfigError
from approver.sandbox import serve
from approver.web import create_app
from tests.oidc_provider import create_provider_app

CLIENT_ID, CLIENT_SECRET = "approver-console", "oidc-client-secret-0123456789"
ALLOWED = {"sub": "u-1", "email": "ops@example.com", "email_verified": True}


@pytest.fixture(scope="module")
def provider_server():
    server = serve(create_provider_app(CLIENT_ID, CLIENT_SECRET))
    yield server
    server.shutdown()


@pytest.fixture
def provider(provider_server):
    state = provider_server.app.provider
    state.user, state.claims, state.signing_key = dict(ALLOWED), {}, state.key
    return state


@pytest.fixture
def oidc_settings(settings, provider_server):
    return settings.with_(oidc_issuer=provider_server.url, oidc_client_id=CLIENT_ID,
                          oidc_client_secret=CLIENT_SECRET,
                          oidc_allowed_users=("ops@example.com",),
                          oidc_allowed_groups=("api-admins",),
                          public_url="http://localhost")


@pytest.fixture
def client(oidc_settings, rt):
    return create_app(oidc_settings).test_client()


def sign_on(client):
    """Follow the sign-on as a browser: to the provider over HTTP, back to the callback."""
    start = client.get("/console/oidc/login?next=/console/log")
    assert start.status_code == 302, start.data
    at_provider = requests.get(start.headers["Location"], allow_redirects=False, timeout=5)
    if at_provider.status_code != 302:
        return at_provider
    back = urlsplit(at_provider.headers["Location"])
    return client.get(f"{back.path}?{back.query}")


def test_the_login_page_offers_single_sign_on(client):
    page = client.get("/console/login")
    assert page.status_code == 200 and b"Sign in with single sign-on" in page.data


def test_an_allowed_user_signs_on_and_is_audited(client, provider, rt):
    answer = sign_on(client)
    assert answer.status_code == 303 and answer.headers["Location"] == "/console/log"
    page = client.get("/console/")
    assert page.status_code == 200 and b"ops@example.com" in page.data
    entry = rt.store.entries(1)[0]
    assert (entry["event"], entry["by"], entry["via"]) == (
        "console_login", "oidc:ops@example.com", "oidc")


def test_a_member_of_an_allowed_group_signs_on(client, provider):
    provider.user = {"sub": "u-2", "email": "dev@example.com", "email_verified": True,
                     "groups": ["api-admins"]}
    assert sign_on(client).status_code == 303
    assert b"oidc:dev@example.com" in client.get("/console/").data


def test_someone_not_allowed_is_refused(client, provider, rt):
    provider.user = {"sub": "u-3", "email": "intruder@example.com", "email_verified": True,
                     "groups": ["staff"]}
    answer = sign_on(client)
    assert answer.status_code == 403 and b"intruder@example.com" in answer.data
    assert client.get("/console/").status_code == 302
    assert rt.store.entries(1)[0]["event"] == "console_login_refused"


@pytest.mark.parametrize("sub", ["u-9\n", "u-9\nforged: line", "u-9\x00", ""])
def test_a_name_with_control_characters_is_refused(client, provider, sub):
    provider.user = {"sub": sub, "groups": ["api-admins"]}
    assert sign_on(client).status_code == 403
    assert client.get("/console/").status_code == 302


@pytest.mark.parametrize("verified", [{"email_verified": False}, {"email_verified": "true"},
                                      {}], ids=["false", "a string", "absent"])
def test_an_email_the_provider_does_not_say_is_verified_does_not_count(client, provider,
                                                                      verified):
    provider.user = {"sub": "u-4", "email": "ops@example.com", **verified}
    assert sign_on(client).status_code == 403


@pytest.mark.parametrize("change", [
    {"aud": "another-client"},
    {"iss": "https://elsewhere.example"},
    {"exp": 1_000_000, "iat": 999_000},
    {"nonce": "replayed"},
])
def test_tokens_that_do_not_verify_are_refused(client, provider, change):
    provider.claims = change
    answer = sign_on(client)
    assert answer.status_code == 400 and b"Sign-in failed" in answer.data
    assert client.get("/console/").status_code == 302


def test_a_token_signed_with_another_key_is_refused(client, provider):
    provider.signing_key = RSAKey.generate_key(2048, parameters={"kid": "test-key"})
    assert sign_on(client).status_code == 400
    assert client.get("/console/").status_code == 302


def test_a_callback_with_a_forged_state_is_refused(client, provider):
    client.get("/console/oidc/login")
    answer = client.get("/console/oidc/callback?code=x&state=forged")
    assert answer.status_code == 400


def test_an_unreachable_provider_is_a_503(settings, rt):
    app = create_app(settings.with_(oidc_issuer="http://127.0.0.1:9", oidc_client_id="c",
                                    oidc_client_secret="s", oidc_allowed_users=("a",),
                                    public_url="http://localhost"))
    assert app.test_client().get("/console/oidc/login").status_code == 503


@pytest.mark.parametrize(("env", "message"), [
    ({"APPROVER_OIDC_ISSUER": "https://id.example"}, "CLIENT_ID"),
    ({"APPROVER_OIDC_ISSUER": "https://id.example", "APPROVER_OIDC_CLIENT_ID": "c",
      "APPROVER_OIDC_CLIENT_SECRET": "s"}, "ALLOWED_USERS"),
    ({"APPROVER_OIDC_ISSUER": "http://id.example", "APPROVER_OIDC_CLIENT_ID": "c",
      "APPROVER_OIDC_CLIENT_SECRET": "s", "APPROVER_OIDC_ALLOWED_USERS": "a"}, "https"),
    ({"APPROVER_CONSOLE_USER_HEADER": "X-User"}, "TRUSTED_PROXIES"),
    ({"APPROVER_CONSOLE_USER_HEADER": "X-User",
      "APPROVER_CONSOLE_TRUSTED_PROXIES": "proxy.example"}, "addresses or networks"),
])
def test_incomplete_sign_in_settings_fail_at_start(env, message):
    with pytest.raises(ConfigError, match=message):
        config.from_env(env)


# -- what a session and an allow-list may not do ---------------------------------------------
def test_a_subject_on_the_allow_list_is_not_an_email_on_it(client, provider, rt):
    provider.user = {"sub": "ops@example.com", "email": "someone@else.example",
                     "email_verified": True}
    assert sign_on(client).status_code == 403
    provider.user = {"sub": "ops@example.com"}
    assert sign_on(client).status_code == 403
    assert client.get("/console/").status_code == 302


def test_a_session_ends_once_the_allow_list_no_longer_admits_the_person(client, provider,
                                                                       oidc_settings, rt):
    assert sign_on(client).status_code == 303
    assert client.get("/console/").status_code == 200
    narrower = create_app(oidc_settings.with_(oidc_allowed_users=("boss@example.com",)))
    later = narrower.test_client()
    for cookie in client._cookies.values():
        later.set_cookie(cookie.key, cookie.value, path=cookie.path)
    assert later.get("/console/").status_code == 302
    ended = rt.store.entries(1)[0]
    assert (ended["event"], ended["by"]) == ("console_session_ended", "oidc:ops@example.com")
    assert client.get("/console/").status_code == 302  # and the session is gone for good


def test_the_providers_error_text_is_logged_not_shown(client, provider, caplog):
    start = client.get("/console/oidc/login")
    state = dict(p.split("=", 1) for p in urlsplit(start.headers["Location"]).query.split("&"))[
        "state"]
    answer = client.get("/console/oidc/callback", query_string={
        "state": state, "error": "access_denied: <b>call +1 555 0100 to unlock</b>",
        "error_description": "call us"})
    assert answer.status_code == 400 and b"555" not in answer.data
    assert b"single sign-on answer was refused" in answer.data
    assert "555 0100" in caplog.text


def test_single_sign_on_needs_the_public_url():
    env = {"APPROVER_OIDC_ISSUER": "https://id.example", "APPROVER_OIDC_CLIENT_ID": "c",
           "APPROVER_OIDC_CLIENT_SECRET": "s", "APPROVER_OIDC_ALLOWED_USERS": "a@example.com"}
    with pytest.raises(ConfigError, match="APPROVER_PUBLIC_URL is required"):
        config.from_env(env)
    settings = config.from_env({**env, "APPROVER_PUBLIC_URL": "https://approver.example"})
    assert settings.public_url == "https://approver.example"


def test_the_callback_address_never_comes_from_the_host_header(client, provider):
    start = client.get("/console/oidc/login", headers={"Host": "evil.example"})
    query = urlsplit(start.headers["Location"]).query
    assert "evil.example" not in query and "redirect_uri=http%3A%2F%2Flocalhost" in query
