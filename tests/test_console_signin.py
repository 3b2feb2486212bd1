"""Console sign-in as an attacker would try it: sessions that outlive the access they were
granted, guessing in parallel, locking others out, weak passwords, cookies and names."""

import io
import ipaddress
import sys
import threading
import time

import pytest

from approver import cli
from approver.state import accounts
from approver.web import create_app
from tests.console_support import PASSWORD, add_admin, client_behind_proxy, csrf, sign_in
from tests.test_review import in_review

NEW_PASSWORD = "a different staple for the horse"


def run(capsys, monkeypatch, *argv, stdin=""):
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


# -- 1, 2: sessions end when the access they stood for does --------------------------------
def test_changing_a_password_ends_the_sessions_signed_in_with_the_old_one(admin_client, rt):
    accounts.add(rt.store, "alice", NEW_PASSWORD)
    assert admin_client.get("/console/").status_code == 302
    assert sign_in(admin_client).status_code == 401
    assert sign_in(admin_client, password=NEW_PASSWORD).status_code == 303


def test_a_removed_account_loses_its_session_even_when_its_session_index_is_gone(
        admin_client, rt):
    for key in rt.redis.keys(accounts.SESSIONS_KEY + "*"):
        rt.redis.delete(key)  # as when the index expired before the session did
    accounts.remove(rt.store, "alice")
    add_admin(rt, "bob")
    assert admin_client.get("/console/").status_code == 302


def test_a_session_ends_at_its_lifetime_however_busy(rt, settings):
    add_admin(rt)
    client = create_app(settings.with_(console_session_lifetime=1)).test_client()
    sign_in(client)
    assert client.get("/console/").status_code == 200
    time.sleep(1.2)
    assert client.get("/console/").status_code == 302
    assert rt.redis.keys(accounts.SESSION_KEY + "*") == []


def test_the_lifetime_defaults_to_twelve_hours(admin_client, rt):
    [key] = rt.redis.keys(accounts.SESSION_KEY + "*")
    record = accounts.touch_session(rt.store, key.decode().rsplit(":", 1)[1], 60)
    assert 12 * 3600 - 60 <= record["ends"] - time.time() <= 12 * 3600


def moved(client, app):
    """The same browser (its cookies) in front of a web tier with other settings."""
    other = app.test_client()
    for cookie in client._cookies.values():
        other.set_cookie(cookie.key, cookie.value, path=cookie.path)
    return other


PROXY = ipaddress.ip_network("10.1.2.3/32")
THROUGH_PROXY = {"environ_base": {"REMOTE_ADDR": "10.1.2.3"}}


@pytest.fixture
def proxy_settings(settings):
    return settings.with_(console_user_header="X-Forwarded-Email",
                          console_trusted_proxies=(PROXY,), trusted_proxies=(PROXY,))


def test_a_proxy_session_ends_when_the_proxy_no_longer_names_the_person(proxy_settings, rt,
                                                                        settings):
    client = create_app(proxy_settings).test_client()
    ops = {"X-Forwarded-Email": "ops@example.com"}
    assert client.get("/console/", headers=ops, **THROUGH_PROXY).status_code == 200
    # The same cookie, on a request the proxy did not vouch for: not signed in.
    assert client.get("/console/", **THROUGH_PROXY).status_code == 302
    assert client.get("/console/", headers=ops, **THROUGH_PROXY).status_code == 200
    # The proxy taken out of the settings (a local account keeps the console open).
    add_admin(rt)
    later = moved(client, create_app(settings))
    assert later.get("/console/", headers=ops, **THROUGH_PROXY).status_code == 302
    assert rt.store.entries(1)[0]["event"] == "console_session_ended"


def test_a_proxy_user_is_not_the_local_account_of_the_same_name(proxy_settings, rt, sandbox):
    add_admin(rt, "alice")
    client = create_app(proxy_settings).test_client()
    alice = {"headers": {"X-Forwarded-Email": "alice"}, **THROUGH_PROXY}
    assert client.get("/console/", **alice).status_code == 200
    assert rt.store.entries(1)[0]["by"] == "proxy:alice"
    carol = in_review(rt, sandbox)
    page = client.get(f"/console/requests/{carol}", **alice)
    answer = client.post(f"/console/requests/{carol}/decide", data={
        "csrf_token": csrf(page.data), "outcome": "deny", "reason": "spam"}, **alice)
    assert answer.status_code == 303
    assert rt.store.claim_of(carol)["by"] == "proxy:alice"


def test_admin_remove_ends_the_sessions_of_anyone_and_says_so(capsys, monkeypatch, rt):
    sid = accounts.start_session(rt.store, "oidc:ops@example.com", "oidc", "127.0.0.1", 60, 60)
    code, out, _ = run(capsys, monkeypatch, "admin", "remove", "oidc:ops@example.com")
    assert code == 0 and "ended 1 session of oidc:ops@example.com" in out
    assert accounts.touch_session(rt.store, sid, 60) is None
    add_admin(rt)
    accounts.start_session(rt.store, "local:alice", "local", "127.0.0.1", 60, 60)
    code, out, _ = run(capsys, monkeypatch, "admin", "remove", "alice")
    assert code == 0 and "removed console account alice; ended its 1 session" in out
    assert run(capsys, monkeypatch, "admin", "remove", "proxy:nobody")[0] == 1


# -- 3, 4, 5: guessing ------------------------------------------------------------------------
def parallel_logins(app, count: int, name: str, password: str) -> list[int]:
    """`count` browsers with their login pages open, sending the form at the same moment."""
    clients = [app.test_client() for _ in range(count)]
    tokens = [csrf(c.get("/console/login").data) for c in clients]
    start = threading.Barrier(count)
    statuses = [0] * count

    def send(n: int) -> None:
        start.wait()
        statuses[n] = clients[n].post("/console/login", data={
            "csrf_token": tokens[n], "name": name, "password": password}).status_code

    threads = [threading.Thread(target=send, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_parallel_guesses_are_counted_before_any_is_checked(app, rt):
    add_admin(rt)
    statuses = parallel_logins(app, 16, "alice", "guess guess guess")
    assert sorted(statuses) == [401] * 5 + [429] * 11


def test_a_login_waits_for_a_free_check_then_answers_503(console, rt, monkeypatch):
    monkeypatch.setattr(accounts, "HASH_WAIT", 0.1)
    for _ in range(accounts.HASHES_AT_ONCE):  # every check of this process in use
        assert accounts._hashing.acquire(timeout=5)
    try:
        busy = sign_in(console)
    finally:
        for _ in range(accounts.HASHES_AT_ONCE):
            accounts._hashing.release()
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "5"
    assert b"Too many sign-ins at once" in busy.data
    assert sign_in(console).status_code == 303


@pytest.fixture
def console(app, rt):
    add_admin(rt)
    return app.test_client()


@pytest.fixture
def behind_proxy(settings, rt):
    return client_behind_proxy(settings, rt)


def from_address(client, address: str):
    client.environ_base["HTTP_X_FORWARDED_FOR"] = address
    return client


def test_failures_elsewhere_do_not_lock_a_person_out(behind_proxy):
    attacker = from_address(behind_proxy, "198.51.100.7")
    for _ in range(5):
        assert sign_in(attacker, password="guess guess guess").status_code == 401
    assert sign_in(attacker).status_code == 429  # even the right password, from there
    alice = from_address(behind_proxy, "203.0.113.9")
    assert sign_in(alice).status_code == 303


def test_an_ipv6_client_is_counted_by_its_64(behind_proxy):
    for n in range(20):
        client = from_address(behind_proxy, f"2001:db8:0:1::{n + 1:x}")
        assert sign_in(client, name=f"guess{n}", password="guess").status_code == 401
    assert sign_in(from_address(behind_proxy, "2001:db8:0:1:ffff::9")).status_code == 429
    assert sign_in(from_address(behind_proxy, "2001:db8:0:2::1")).status_code == 303


def test_each_lock_out_of_a_name_at_an_address_lasts_twice_as_long(behind_proxy, rt):
    attacker = from_address(behind_proxy, "198.51.100.7")
    waits = []
    for _ in range(3):
        for _ in range(5):
            assert sign_in(attacker, password="guess guess guess").status_code == 401
        blocked = sign_in(attacker, password="guess guess guess")
        assert blocked.status_code == 429
        waits.append(int(blocked.headers["Retry-After"]))
        for key in rt.redis.keys("approver:console:login:lockout:*"):
            rt.redis.delete(key)  # as when the lock-out has run out
    assert waits == [60, 120, 240]


# -- 6, 7, 8: single sign-on is in test_console_oidc.py -------------------------------------
# -- 9: passwords ---------------------------------------------------------------------------
@pytest.mark.parametrize("weak", [" " * 12, "password1234", "aaaaaaaaaaaa", "qwertyuiop12",
                                  "alice-alice-alice"])
def test_common_and_trivial_passwords_are_refused(rt, weak):
    with pytest.raises(accounts.AccountError, match="too easy to guess"):
        accounts.add(rt.store, "alice", weak)
    assert not accounts.exists(rt.store, "alice")


def test_one_length_limit_for_the_command_line_the_store_and_the_form(
        capsys, monkeypatch, console, rt):
    long = "Tr0ub4dor&3-" * 11  # 132 characters
    code, _, err = run(capsys, monkeypatch, "admin", "add", "bob", stdin=long + "\n")
    assert code == 2 and f"at most {accounts.MAX_PASSWORD}" in err
    with pytest.raises(accounts.AccountError):
        accounts.add(rt.store, "bob", long)
    answer = sign_in(console, password=long)
    assert answer.status_code == 400 and b"at most 128" in answer.data
    longest = long[:accounts.MAX_PASSWORD]
    assert accounts.add(rt.store, "bob", longest) is None
    assert sign_in(console, "bob", longest).status_code == 303


# -- 11: the cookie -------------------------------------------------------------------------
def test_over_https_the_cookie_is_host_prefixed(settings, rt):
    add_admin(rt)
    client = create_app(settings.with_(public_url="https://approver.example")).test_client()
    cookie = sign_in(client).headers["Set-Cookie"]
    assert cookie.startswith("__Host-approver_console=")
    assert "Secure" in cookie and "Path=/;" in cookie and "Domain" not in cookie
    assert client.get("/console/").status_code == 200


def test_a_request_over_tls_gets_the_host_prefixed_cookie(console):
    tls = {"base_url": "https://localhost"}
    page = console.get("/console/login", **tls)
    answer = console.post("/console/login", data={
        "csrf_token": csrf(page.data), "name": "alice", "password": PASSWORD}, **tls)
    assert answer.status_code == 303
    assert answer.headers["Set-Cookie"].startswith("__Host-approver_console=")
    assert console.get("/console/", **tls).status_code == 200


# -- issue 22, 13: changing a password is asked for ------------------------------------------
def test_admin_add_on_an_existing_name_changes_nothing_without_reset(capsys, monkeypatch,
                                                                     admin_client, rt):
    code, _, err = run(capsys, monkeypatch, "admin", "add", "alice", stdin=NEW_PASSWORD + "\n")
    assert code == 1 and "--reset" in err
    assert accounts.verify(rt.store, "alice", PASSWORD) is not None
    assert admin_client.get("/console/").status_code == 200
    code, out, _ = run(capsys, monkeypatch, "admin", "add", "--reset", "alice",
                       stdin=NEW_PASSWORD + "\n")
    assert code == 0 and "changed the password of console account alice; ended its 1 " \
        "session" in out
    assert accounts.verify(rt.store, "alice", NEW_PASSWORD) is not None
    assert admin_client.get("/console/").status_code == 302

