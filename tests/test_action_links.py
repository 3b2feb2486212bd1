"""Deciding from a mail: each admin's Approve and Deny links, through a real SMTP server, the
web app served over HTTP, Redis and the sandbox Dashboard, and a worker running the jobs."""

import re
import time
from html import unescape

import pytest
import requests

from approver import state as st
from approver.pipeline import actions, decide
from approver.state import actions as tokens
from tests import test_mail
from tests.conftest import serving
from tests.console_support import add_admin, csrf, sign_in
from tests.test_console import redis_text
from tests.test_mail import SENDER, parts
from tests.test_review import in_review

ADMINS = ("reviewers@example.com", "lead@example.com")
LINK = re.compile(r"https://approver\.example\.com(/console/act/[A-Za-z0-9_-]+)\?outcome=(\w+)")
HIDDEN = re.compile(r'name="(token|nonce)" value="([^"]+)"')
smtp, send_mail = test_mail.smtp, test_mail.send_mail  # the real SMTP server's fixtures


@pytest.fixture
def settings(settings, smtp):
    return settings.with_(smtp_url=smtp.url, mail_from=SENDER, mail_on=("review",),
                          mail_admins=ADMINS, public_url="https://approver.example.com")


@pytest.fixture
def browser():
    """New HTTP sessions (a browser's cookies), closed after the test."""
    made = []

    def new() -> requests.Session:
        made.append(requests.Session())
        return made[-1]

    yield new
    for session in made:
        session.close()


@pytest.fixture
def web(app):
    with serving(app) as url:
        yield url


def mailed_links(smtp) -> dict[str, dict[str, str]]:
    """Each admin's links, by outcome, from the mails the SMTP server took."""
    found = {}
    for recipients, message in smtp.messages:
        if recipients[0] in ADMINS:
            text, html = parts(message)
            assert LINK.findall(text) == [(p, o) for p, o in LINK.findall(unescape(html))]
            found[recipients[0]] = {o: p for p, o in LINK.findall(text)}
    return found


@pytest.fixture
def mailed(rt, sandbox, smtp, send_mail):
    """A request in review, and each admin's links from the mail about it."""
    ref = in_review(rt, sandbox)
    send_mail()
    return ref, mailed_links(smtp)


def form_of(page: str) -> dict:
    return dict((name, unescape(value)) for name, value in HIDDEN.findall(page))


def post(web, session, path, outcome, reason="", **extra):
    page = session.get(web + path)
    assert page.status_code == 200, page.text
    return session.post(web + "/console/act",
                        data={**form_of(page.text), "outcome": outcome, "reason": reason,
                              **extra}, allow_redirects=False)


def audit(rt, event="link_refused"):
    return [e for e in rt.store.entries(50) if e["event"] == event]


def test_each_admin_gets_links_of_their_own_and_opening_one_changes_nothing(
        rt, sandbox, mailed, smtp, web, work):
    ref, links = mailed
    assert set(links) == set(ADMINS)
    assert links[ADMINS[0]]["approve"] != links[ADMINS[1]]["approve"]
    [(_, mail)] = [(r, m) for r, m in smtp.messages if r == [ADMINS[0]]]
    assert mail["To"] == ADMINS[0]  # one recipient per message: the links are theirs
    # A mail scanner fetches every link, more than once: nothing is decided.
    for path in (*links[ADMINS[0]].values(), *links[ADMINS[1]].values()):
        for _ in range(2):
            page = requests.get(web + path, timeout=5)
            assert page.status_code == 200
            assert "Carol Consulting" in page.text and "free-mail-to-review" in page.text
            assert page.headers["Referrer-Policy"] == "no-referrer"
            assert "no-store" in page.headers["Cache-Control"]
    work()
    assert rt.store.claim_of(ref) is None and rt.store.state(ref)["state"] == st.IN_REVIEW
    assert sandbox.app.sandbox.get_key_request(ref)["approved"] is False


def test_the_form_applies_the_decision_once(browser, rt, sandbox, mailed, web, work):
    ref, links = mailed
    tab = browser()
    path = links[ADMINS[0]]["approve"]
    page = tab.get(web + path)
    form = {**form_of(page.text), "outcome": "approve", "reason": "known partner"}
    done = tab.post(web + "/console/act", data=form)
    assert done.status_code == 200 and "works no more" in done.text
    work()
    state = rt.store.state(ref)
    assert (state["state"], state["outcome"], state["decided_by"], state["via"]) == (
        st.APPLIED, "approve", f"email:{ADMINS[0]}", "email")
    assert sandbox.app.sandbox.get_key_request(ref)["approved"] is True
    # The same form again (a replay), the same link again, the other link of the pair.
    assert tab.post(web + "/console/act", data=form).status_code == 400
    for again in (path, links[ADMINS[0]]["deny"]):
        refused = tab.get(web + again)
        assert refused.status_code == 410 and "was used at" in refused.text
    # The other admin's link: the request is decided.
    other = tab.get(web + links[ADMINS[1]]["deny"])
    assert other.status_code == 410 and f"approved by email:{ADMINS[0]}" in other.text
    assert [e["why"] for e in audit(rt)][:1] == [unescape(other.text).split(
        "<p>")[1].split("</p>")[0]]
    assert audit(rt, "link_used")[0]["by"] == f"email:{ADMINS[0]}"


def test_two_tabs_posting_one_link_decide_once(browser, rt, sandbox, mailed, web, work):
    ref, links = mailed
    path = links[ADMINS[0]]["deny"]
    tabs = [browser(), browser()]
    forms = [form_of(t.get(web + path).text) for t in tabs]
    first = tabs[0].post(web + "/console/act", data={**forms[0], "outcome": "deny",
                                                      "reason": "spam"})
    second = tabs[1].post(web + "/console/act", data={**forms[1], "outcome": "approve"})
    assert (first.status_code, second.status_code) == (200, 410)
    work()
    assert rt.store.state(ref)["outcome"] == "deny"


def test_an_expired_link_is_refused_and_audited(rt, sandbox, mailed, web):
    ref, links = mailed
    token = links[ADMINS[0]]["approve"].rpartition("/")[2]
    rt.redis.hset(tokens.TOKEN_KEY + tokens.digest(token), "expires", int(time.time()) - 1)
    page = requests.get(web + links[ADMINS[0]]["approve"], timeout=5)
    assert page.status_code == 410 and "This link expired at" in page.text
    [entry] = audit(rt)
    assert (entry["request_id"], entry["by"], entry["via"]) == (
        ref, f"email:{ADMINS[0]}", "email")


def test_a_decision_in_the_console_kills_the_links(browser, rt, sandbox, mailed, web, work):
    ref, links = mailed
    tab = browser()
    page = tab.get(web + links[ADMINS[0]]["approve"])  # opened before the decision
    decide.decide_by_person(rt, ref, "deny", "not for us", "local:bob", "console")
    for path in links[ADMINS[0]].values():
        gone = tab.get(web + path)
        assert gone.status_code == 410 and "denied by local:bob" in gone.text
    late = tab.post(web + "/console/act", data={**form_of(page.text),
                                                     "outcome": "approve"})
    assert late.status_code == 410
    work()
    assert rt.store.state(ref)["outcome"] == "deny" and rt.store.claim_of(ref) is None


def test_a_request_that_left_and_came_back_is_not_decided_by_old_links(
        rt, sandbox, mailed, web):
    ref, links = mailed
    # Left the inbox and entered it again: the old links were for the earlier time.
    rt.redis.zadd(st.INBOX_KEY, {ref: time.time() + 1})
    assert requests.get(web + links[ADMINS[0]]["approve"], timeout=5).status_code == 410


def test_another_persons_link_is_refused_when_sign_in_is_required(
        browser, rt, sandbox, mailed, settings, work):
    from approver.web import create_app

    ref, links = mailed
    add_admin(rt)  # alice: a console account, not the link's recipient
    add_admin(rt, ADMINS[1])  # lead@example.com, a local account named by the address
    app = create_app(settings.with_(action_link_sign_in=True))
    with serving(app) as web:
        tab = browser()
        path = links[ADMINS[1]]["approve"]
        first = tab.get(web + path, allow_redirects=False)
        assert first.status_code == 302
        assert first.headers["Location"].startswith("/console/login?next=/console/act/")
        assert tab.post(web + "/console/act", data={"outcome": "approve"}).status_code \
            == 401
        flask = app.test_client()
        assert sign_in(flask).status_code == 303  # alice
        theirs = flask.get(path)
        assert theirs.status_code == 403 and b"sent to lead@example.com" in theirs.data
        assert audit(rt)[0]["by"] == "local:alice"
        lead = app.test_client()
        back = sign_in(lead, ADMINS[1], next_path=first.headers["Location"].split("next=")[1])
        assert back.status_code == 303 and back.headers["Location"].rstrip("?") == path
        page = lead.get(path).data.decode()
        without_csrf = lead.post("/console/act", data={**form_of(page), "outcome": "approve"})
        assert without_csrf.status_code == 400
        page = lead.get(path).data.decode()
        done = lead.post("/console/act", data={**form_of(page), "csrf_token": csrf(page),
                                               "outcome": "approve"})
        assert done.status_code == 200
    work()
    assert rt.store.state(ref)["decided_by"] == f"local:{ADMINS[1]}"


def test_a_proxys_user_is_signed_in_by_the_link_page_as_by_any_console_page(
        rt, sandbox, mailed, settings, work):
    import ipaddress

    from approver.web import create_app

    ref, links = mailed
    proxy = ipaddress.ip_network("10.1.2.3/32")
    app = create_app(settings.with_(action_link_sign_in=True, console_trusted_proxies=(proxy,),
                                    console_user_header="X-Forwarded-Email"))
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "10.1.2.3"
    path, theirs = links[ADMINS[0]]["approve"], {"X-Forwarded-Email": ADMINS[0]}
    assert client.get(path, headers={"X-Forwarded-Email": ADMINS[1]}).status_code == 403
    page = client.get(path, headers=theirs).data.decode()
    done = client.post("/console/act", headers=theirs,
                       data={**form_of(page), "csrf_token": csrf(page), "outcome": "approve"})
    assert done.status_code == 200
    work()
    assert rt.store.state(ref)["decided_by"] == f"proxy:{ADMINS[0]}"


def test_a_person_no_longer_allowed_cannot_use_their_link(rt, sandbox, mailed, settings):
    from approver.web import create_app

    _, links = mailed
    app = create_app(settings.with_(mail_admins=(ADMINS[1],)))
    page = app.test_client().get(links[ADMINS[0]]["approve"])
    assert page.status_code == 403 and b"may not decide" in page.data


def test_deny_needs_a_reason_and_the_link_stays_usable(browser, rt, sandbox, mailed, web, work):
    ref, links = mailed
    tab = browser()
    refused = post(web, tab, links[ADMINS[0]]["deny"], "deny", "  ")
    assert refused.status_code == 400 and "a reason is required" in refused.text.lower()
    # The page comes back with a fresh nonce; the link was not used.
    again = tab.post(web + "/console/act", data={**form_of(refused.text),
                                                     "outcome": "deny", "reason": "spam"})
    assert again.status_code == 200
    work()
    assert rt.store.state(ref)["outcome"] == "deny"


# -- the attack pass --------------------------------------------------------------------------
def test_guessed_tokens_and_forged_forms_do_nothing(browser, rt, sandbox, mailed, web):
    ref, links = mailed
    guess = requests.get(web + "/console/act/" + "A" * 43, timeout=5)
    assert guess.status_code == 404 and "not one this service made" in guess.text
    token = links[ADMINS[0]]["approve"].rpartition("/")[2]
    # A form from another site: it may know a token (a leaked mail), never a page's nonce.
    for form in ({"token": token, "outcome": "approve"},
                 {"token": token, "nonce": "forged", "outcome": "approve"},
                 {"token": "A" * 43, "nonce": "x", "outcome": "approve"}, {}):
        answer = requests.post(web + "/console/act", data=form, timeout=5)
        assert answer.status_code == 400 and "out of date" in answer.text
    # A nonce is good for the token whose page gave it, not another's.
    tab = browser()
    nonce = form_of(tab.get(web + links[ADMINS[1]]["approve"]).text)["nonce"]
    crossed = tab.post(web + "/console/act",
                           data={"token": token, "nonce": nonce, "outcome": "approve"})
    assert crossed.status_code == 400
    assert rt.store.claim_of(ref) is None
    assert audit(rt) == []  # guesses do not fill the decision log


def test_tokens_are_never_kept_or_logged(browser, rt, sandbox, mailed, web, work, caplog):
    caplog.set_level("DEBUG")
    _, links = mailed
    post(web, browser(), links[ADMINS[0]]["approve"], "approve")
    work()
    stored = redis_text(rt.redis)
    # The service's own log lines (the test's HTTP server logs paths as werkzeug does;
    # gunicorn's access log goes through logs.redact, below).
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name != "werkzeug")
    for path in (p for each in links.values() for p in each.values()):
        token = path.rpartition("/")[2]
        assert token not in stored and token not in logged
        assert tokens.digest(token) in stored or tokens.digest(token) in str(
            rt.redis.keys("approver:action:*"))
    from approver import logs
    line = logs.redact(f'"GET {links[ADMINS[0]]["approve"]}?outcome=approve HTTP/1.1" 200 '
                       f'next=%2Fconsole%2Fact%2F{token}')
    assert token not in line and line.count("[redacted]") == 2


def test_links_need_a_public_url(rt, sandbox, smtp, send_mail, settings):
    rt.settings = settings.with_(public_url=None)
    in_review(rt, sandbox)
    send_mail()
    admins = [(r, m) for r, m in smtp.messages if r[0] in ADMINS]
    assert [r for r, _ in admins] == [list(ADMINS)]  # one message, as before
    assert "/console/act/" not in admins[0][1].as_string()
    assert actions.links(rt.store, rt.settings, ADMINS[0], "64b0") == {}
