"""The console in a real browser: headless Chromium (Selenium) against the web app served
over HTTP, the sandbox Dashboard and Redis; jobs run by an RQ worker in this process."""

import re
import time

import pytest

from approver.rules import explain
from approver.sandbox import serve
from approver.state import accounts
from approver.state import grants as schedule
from approver.state import renewals as kept
from approver.web import create_app
from tests import browser
from tests.console_support import PASSWORD, add_admin, own_rules, with_grant, with_small_companies
from tests.test_grants import DAY, approved, ends, events
from tests.test_renewals import remind
from tests.test_review import CAROL, DAVE, in_review


@pytest.fixture(scope="module")
def chrome():
    """One browser for the module; each test starts signed out with no cookies."""
    browser.require()
    instance = browser.Browser()
    yield instance
    instance.quit()


@pytest.fixture
def web(settings, rt):
    """The web app over real HTTP, with one admin account; its base URL."""
    add_admin(rt, "alice")
    server = serve(create_app(settings))
    yield server.url
    server.shutdown()


@pytest.fixture
def b(chrome, web):
    chrome.open(f"{web}/console/login")
    chrome.driver.delete_all_cookies()
    chrome.resize(browser.LAPTOP)
    return chrome


def test_sign_in_list_open_and_approve(b, web, rt, sandbox, work):
    carol = in_review(rt, sandbox)
    b.sign_in(web, "alice", PASSWORD)
    assert b.title.startswith("Review inbox")
    assert CAROL in b.text and "free-mail-to-review" in b.text
    b.driver.find_element("link text", carol).click()
    assert "Facts the rules used" in b.text and "developer.email_domain" in b.text
    b.fill("textarea[name=reason]", "known customer")
    b.button("Approve").click()
    b.wait_for_text("alice is approving this request")
    work()  # the worker carries the claim out; the page refreshes by itself
    b.wait_for_text("approve by local:alice")
    assert sandbox.app.sandbox.get_key_request(carol)["approved"] is True
    assert rt.store.state(carol)["decided_by"] == "local:alice"


def test_deny_one_with_a_reason(b, web, rt, sandbox, work):
    carol = in_review(rt, sandbox)
    b.sign_in(web, "alice", PASSWORD)
    b.open(f"{web}/console/requests/{carol}")
    b.button("Deny").click()  # no reason: the server says it is needed
    b.wait_for_text("a reason is required to deny a request")
    b.fill("textarea[name=reason]", "Use a work address, please.")
    b.button("Deny").click()
    b.wait_for_text("alice is denying this request")
    work()
    b.wait_for_text("deny by local:alice")
    assert sandbox.app.sandbox.get_key_request(carol) is None
    assert rt.store.state(carol)["reason"] == "Use a work address, please."


def test_bulk_deny(b, web, rt, sandbox, work):
    carol = in_review(rt, sandbox)
    dave = in_review(rt, sandbox, DAVE, fields={"company": "Dave Ltd"})
    b.sign_in(web, "alice", PASSWORD)
    for ref in (carol, dave):
        b.find(f"input[name=ids][value='{ref}']").click()
    b.fill("textarea[name=reason]", "spam wave")
    b.button("Deny selected").click()
    b.wait_for_text("Denying 2 request(s)")
    work()
    b.open(f"{web}/console/")
    b.wait_for_text("Nothing awaits review")
    assert {rt.store.state(r)["outcome"] for r in (carol, dave)} == {"deny"}


def test_an_action_without_its_csrf_token_is_refused(b, web, rt, sandbox):
    carol = in_review(rt, sandbox)
    b.sign_in(web, "alice", PASSWORD)
    b.open(f"{web}/console/requests/{carol}")
    # What a forged form lacks: the page's token (removed here by the test itself).
    b.driver.execute_script(
        "document.querySelectorAll('.decide input[name=csrf_token]')"
        ".forEach(function (e) { e.remove(); });")
    b.button("Approve").click()
    b.wait_for_text("This form's security token is missing or out of date")
    assert "Form refused" in b.title
    assert rt.store.state(carol)["state"] == "in_review"


def test_an_idle_session_expires(chrome, settings, rt, sandbox):
    add_admin(rt, "alice")
    server = serve(create_app(settings.with_(console_idle_timeout=2)))
    try:
        chrome.open(f"{server.url}/console/login")
        chrome.driver.delete_all_cookies()
        chrome.sign_in(server.url, "alice", PASSWORD)
        assert chrome.title.startswith("Review inbox")
        time.sleep(2.5)
        chrome.driver.find_element("link text", "Decision log").click()
        chrome.wait_for_text("Your session has ended (after 2 seconds without use")
        assert chrome.title.startswith("Sign in")
        chrome.sign_in(None, "alice", PASSWORD)  # and on to where they were going
        assert chrome.title.startswith("Decision log")
    finally:
        server.shutdown()


def test_sign_out(b, web):
    b.sign_in(web, "alice", PASSWORD)
    b.button("Sign out").click()
    b.wait_for_text("Signed out.")
    b.open(f"{web}/console/")
    assert b.title.startswith("Sign in")


def test_two_admins_deciding_the_same_request_one_wins_the_other_is_told(
        b, web, rt, sandbox, work):
    accounts.add(rt.store, "bob", PASSWORD)
    carol = in_review(rt, sandbox)
    other = browser.Browser()
    try:
        b.sign_in(web, "alice", PASSWORD)
        other.sign_in(web, "bob", PASSWORD)
        for person in (b, other):
            person.open(f"{web}/console/requests/{carol}")
        b.fill("textarea[name=reason]", "known customer")
        other.fill("textarea[name=reason]", "looks like spam")
        b.button("Approve").click()
        b.wait_for_text("alice is approving this request")  # alice was first (the claim
        other.button("Deny").click()                        # itself is atomic in Redis)
        other.wait_for_text("alice is already deciding it (approve")
        work()
        b.wait_for_text("approve by local:alice")
        other.open(f"{web}/console/requests/{carol}")
        assert "approve by local:alice" in other.text
    finally:
        other.quit()
    assert sandbox.app.sandbox.get_key_request(carol)["approved"] is True


def test_pages_fit_a_phone_and_a_laptop(b, web, rt, sandbox):
    carol = in_review(rt, sandbox)
    in_review(rt, sandbox, DAVE, fields={"company": "Dave Ltd"})
    b.sign_in(web, "alice", PASSWORD)
    for size in (browser.PHONE, browser.LAPTOP):
        b.resize(size)
        for path in ("/console/", f"/console/requests/{carol}", "/console/log"):
            b.open(f"{web}{path}")
            viewport = b.driver.execute_script("return window.innerWidth")
            assert b.page_width() <= viewport, (size, path)
            assert b.button("Sign out").is_displayed()
    b.resize(browser.PHONE)
    b.open(f"{web}/console/")
    assert b.find(f"input[name=ids][value='{carol}']").is_displayed()
    assert b.button("Deny selected").is_displayed()


def test_the_browser_keeps_the_session_cookie_from_scripts(b, web):
    b.sign_in(web, "alice", PASSWORD)
    assert b.driver.execute_script("return document.cookie") == ""
    cookie = b.driver.get_cookie("approver_console")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Lax"


# -- the whole story on a request's page -----------------------------------------------------
def test_the_login_page_is_styled_before_anyone_signs_in(b, web):
    b.open(f"{web}/console/login")
    href = b.find("link[rel=stylesheet]").get_attribute("href")
    assert re.search(r"/console/static/console\.[0-9a-f]{12}\.css$", href)
    # The stylesheet loaded without a session: the page has its colours, not the browser's.
    background = b.driver.execute_script(
        "return getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(245, 246, 248)"
    assert b.button("Sign in").value_of_css_property("background-color") == "rgba(36, 80, 184, 1)"


def test_a_nested_rule_stopped_by_an_unknown_fact_is_traced_as_the_cli_prints_it(
        b, web, rt, sandbox, tmp_path):
    with_small_companies(rt, tmp_path)
    carol = in_review(rt, sandbox)
    b.sign_in(web, "alice", PASSWORD)
    b.open(f"{web}/console/requests/{carol}")
    printed = explain.lines(explain.steps(rt.store.state(carol)["trace"]))
    shown = b.find(".trace").text.splitlines()
    assert shown == [line.strip() for line in printed]  # the indentation is drawn, not typed
    assert "? rule small-companies-to-review: unknown -> review" in shown
    assert "? any of:" in shown and "✓ not:" in shown
    assert ("? developer.fields.company size = unknown as number unknown  lt 10  "
            "(developer has no field 'company size')") in shown
    used = b.find("dl.used").text
    assert "developer.fields.company size\n? unknown (developer has no field 'company size')" \
        in used


def test_after_a_person_approves_the_page_still_says_which_rule_sent_it(
        b, web, rt, sandbox, work, tmp_path):
    with_small_companies(rt, tmp_path)
    carol = in_review(rt, sandbox)
    b.sign_in(web, "alice", PASSWORD)
    b.open(f"{web}/console/requests/{carol}")
    b.fill("textarea[name=reason]", "signed the partner agreement")
    b.button("Approve").click()
    b.wait_for_text("alice is approving this request")
    work()
    b.wait_for_text("Decided by\nlocal:alice")  # the page reloads itself once applied
    summary = b.find(".summary").text
    assert "Sent here by\nrule small-companies-to-review: Rule small-companies-to-review " \
        "could not be evaluated" in summary
    assert "Decided by\nlocal:alice: approve (signed the partner agreement)" in summary
    assert "? any of:" in b.find(".trace").text


def test_the_page_leads_with_who_wants_what_before_the_decide_box_on_a_phone(
        b, web, rt, sandbox):
    carol = in_review(rt, sandbox)
    b.sign_in(web, "alice", PASSWORD)
    for size in (browser.LAPTOP, browser.PHONE):
        b.resize(size)
        b.open(f"{web}/console/requests/{carol}")
        assert " ".join(b.find("h1.who").text.split()) == (
            "Carol Chen <carol@gmail.com> · Chen Consulting wants Payments API (Free)")
        summary, decide = b.find(".summary"), b.find(".decide")
        assert summary.location["y"] < decide.location["y"], size
    text = b.find(".summary").text
    assert "Sign-up fields (the developer's profile)\nName\nCarol Chen" in text
    assert "Request form fields (this request)\ncompany\nCarol Consulting" in text
    assert "APIs\nPayments API" in text
    link = b.driver.find_element("link text", "the request in the Tyk Dashboard")
    assert link.get_attribute("href").endswith(f"/#/portal/requests/{carol}")


# -- the renewal of an approval for a period -------------------------------------------------
def renewal_waiting(rt, sandbox, folder):
    """A partner's request approved for 90 days (`renew: review`), and the grants pass at
    its reminder run: its renewal waits for a person. Its id, the end it is about, and
    the label the inbox and its page give it."""
    with_grant(own_rules(rt, folder))
    ref = approved(rt, sandbox)
    end = remind(rt, ref)
    return ref, end, f"renewal of access ending {rt.store.state(ref)['expires_at']}"


def status(b) -> int:
    """The HTTP status of the page the browser shows (its navigation's response)."""
    return b.driver.execute_script(
        "return performance.getEntriesByType('navigation')[0].responseStatus")


def test_a_renewal_is_found_in_the_inbox_and_renewed_on_its_page(
        b, web, rt, sandbox, tmp_path):
    ref, end, label = renewal_waiting(rt, sandbox, tmp_path)
    before = len(sandbox.app.sandbox.calls())
    b.sign_in(web, "alice", PASSWORD)
    assert b.title.startswith("Review inbox")
    row = b.driver.find_element("xpath", f"//tr[.//a[normalize-space()='{ref}']]")
    assert label in row.text
    # Not a pending request: nothing on its row a person can tick for a bulk decision.
    assert [box for box in row.find_elements("css selector", "input") if box.is_enabled()] == []
    row.find_element("link text", ref).click()
    assert b.find(".status").text.startswith(
        f"renewal Access ending {label.rsplit(' ', 1)[1]}: awaiting a person (since "
        f"{kept.get(rt.redis, ref)['opened_at']}); "
        "access was approved by rule partners at ")
    [box] = b.find_all(".decide")  # the renewal's own box, not a request's Decide box
    assert box.find_element("tag name", "h2").text == f"Decide the {label}"
    assert [e.text for e in box.find_elements("css selector", "button")] == [
        "Renew", "Let it end"]
    b.resize(browser.PHONE)  # the box fits a phone too
    assert b.page_width() <= b.driver.execute_script("return window.innerWidth")
    assert b.button("Let it end").is_displayed()
    b.resize(browser.LAPTOP)
    b.fill(".decide textarea[name=reason]", "still a partner")
    b.button("Renew").click()
    b.wait_for_text("The renewal is approved: access runs a period more.")
    assert b.find_all(".decide") == []
    state = rt.store.state(ref)
    assert ends(rt, ref) == end + 90 * DAY
    assert rt.redis.zscore(schedule.END_KEY, ref) == end + 90 * DAY
    summary = b.find(".summary").text
    assert f"Access ends\n{state['expires_at']}" in summary
    assert f"Renewal\n{label}: approved by local:alice" in summary
    [renewed] = events(rt, ref, "grant_renewed")
    assert (renewed["by"], renewed["via"], renewed["reason"]) == (
        "local:alice", "console", "still a partner")
    assert sandbox.app.sandbox.calls()[before:] == []  # nothing asked of Tyk
    b.open(f"{web}/console/")
    assert ref not in b.text


def test_letting_a_renewal_end_needs_a_reason(b, web, rt, sandbox, tmp_path):
    ref, end, label = renewal_waiting(rt, sandbox, tmp_path)
    before = len(sandbox.app.sandbox.calls())
    b.sign_in(web, "alice", PASSWORD)
    b.open(f"{web}/console/requests/{ref}")
    b.button("Let it end").click()  # no reason: the server says it is needed
    b.wait_for_text("a reason is required to deny a request")
    assert status(b) == 400
    assert kept.get(rt.redis, ref)["state"] == kept.OPEN and ends(rt, ref) == end
    assert events(rt, ref, "renewal_denied") == []
    b.fill(".decide textarea[name=reason]", "project over")
    b.button("Let it end").click()
    b.wait_for_text("The renewal is denied: access ends as planned.")
    assert status(b) == 200
    assert f"Renewal\n{label}: denied by local:alice" in b.find(".summary").text
    assert kept.get(rt.redis, ref)["state"] == kept.DENIED and ends(rt, ref) == end
    [denied] = events(rt, ref, "renewal_denied")
    assert (denied["by"], denied["reason"]) == ("local:alice", "project over")
    assert events(rt, ref, "grant_renewed") == []
    assert sandbox.app.sandbox.calls()[before:] == []
