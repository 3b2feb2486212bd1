"""Approvals for a period (a rule's `grant:`): checked at file:line, recorded with when
access ends, the developer reminded once and the keys revoked once at the end, on both
portals, also across worker restarts."""

import shutil
import threading
import time

import pytest

from approver import cli
from approver import state as st
from approver.pipeline import decide, grants, renewals, runtime
from approver.pipeline.sources import shown
from approver.pipeline.steps import Person
from approver.rules import check
from approver.state import grants as schedule
from approver.state import renewals as renewals_state
from tests.conftest import ROOT, wait_for, with_portal
from tests.console_support import add_admin, sign_in, with_grant
from tests.rules_support import write
from tests.test_deadlines import start_worker, stop_worker
from tests.test_mail import SENDER, parts, send_mail, smtp  # noqa: F401 (fixtures)
from tests.test_portal_pipeline import ask, calls
from tests.test_review import ALICE, submit

DAY = 86400
KEYS = "/api/portal/developers/"


@pytest.fixture
def settings(settings, smtp, tmp_path):  # noqa: F811
    folder = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", folder)
    with_grant(folder)
    return settings.with_(rules_path=folder, smtp_url=smtp.url, mail_from=SENDER)


def approved(rt, sandbox, email=ALICE) -> str:
    request = submit(sandbox, email)
    result = decide.run(rt, request["id"], "webhook")
    assert (result.state, result.outcome) == (st.APPLIED, "approve"), result
    return request["id"]


def events(rt, ref, name):
    return [e for e in rt.store.entries(200, request_id=ref) if e["event"] == name]


def ends(rt, ref) -> float:
    return float(rt.store.state(ref)["expires_ts"])


def test_an_approval_for_a_period_records_when_access_ends(rt, sandbox):
    before = time.time()
    ref = approved(rt, sandbox)
    state = rt.store.state(ref)
    assert before + 90 * DAY <= ends(rt, ref) <= time.time() + 90 * DAY
    assert state["expires_at"] == schedule.iso(ends(rt, ref))
    assert state["remind_at"] == schedule.iso(ends(rt, ref) - 7 * DAY)
    [applied] = events(rt, ref, "applied")
    assert (applied["expires_at"], applied["remind_at"]) == (state["expires_at"],
                                                             state["remind_at"])


def test_an_approval_without_a_grant_never_ends(rt, sandbox, settings):
    rt.settings = settings.with_(rules_path=ROOT / "rules")  # partners: no grant
    rt.__dict__.pop("rules", None)
    ref = approved(rt, sandbox)
    assert not rt.store.state(ref).get("expires_at")
    assert set(grants.run(rt, now=time.time() + 3650 * DAY).values()) == {0}


def test_a_grant_that_ends_is_revoked_once_and_logged(rt, sandbox):
    tyk = sandbox.app.sandbox
    ref = approved(rt, sandbox)
    state = rt.store.state(ref)
    developer = state["developer_id"]
    assert grants.run(rt, now=ends(rt, ref) - 1)["expired"] == 0
    assert tyk.calls(method="DELETE", path=KEYS + developer + "/keys/") == []
    assert grants.run(rt, now=ends(rt, ref) + 1)["expired"] == 1
    assert grants.run(rt, now=ends(rt, ref) + 2)["expired"] == 0
    deletes = tyk.calls(method="DELETE", path=KEYS + developer + "/keys/")
    assert len(deletes) == len(state["key_ids"]) == 1
    [expired] = events(rt, ref, "grant_expired")
    assert expired["keys_revoked"] == state["key_ids"]  # fingerprints, never keys
    assert expired["by"] == "grant"
    assert rt.store.approved_keys(developer)[state["key_ids"][0]]["revoked_at"]


def test_a_failed_revocation_is_tried_again_by_the_next_pass(rt, sandbox):
    ref = approved(rt, sandbox)
    rt.sources["classic"].revoke = lambda *a, **k: (_ for _ in ()).throw(OSError("down"))
    assert grants.run(rt, now=ends(rt, ref) + 1)["expired"] == 0
    assert events(rt, ref, "grant_expired") == []
    del rt.sources["classic"].revoke
    assert grants.run(rt, now=ends(rt, ref) + 2)["expired"] == 1


def test_the_developer_is_reminded_once_in_plain_words(rt, sandbox, smtp,  # noqa: F811
                                                       send_mail):  # noqa: F811
    ref = approved(rt, sandbox)
    remind = ends(rt, ref) - 7 * DAY
    assert grants.run(rt, now=remind - 1)["reminded"] == 0
    assert grants.run(rt, now=remind + 1)["reminded"] == 1
    assert grants.run(runtime.Runtime(rt.settings), now=remind + 2)["reminded"] == 0
    send_mail()
    [(to, message)] = [(r, m) for r, m in smtp.messages if "ends on" in m["Subject"]]
    assert to == [ALICE]
    text = parts(message)[0]
    expires = rt.store.state(ref)["expires_at"]
    assert f"It ends on {expires[:10]} at {expires[11:16]} UTC, in 7 days." in text
    assert "partner" not in text.lower() and "rule" not in text.lower()  # no internals
    assert len(events(rt, ref, "grant_reminded")) == 1


def test_a_renewed_grant_reminds_again_before_its_new_end(rt, sandbox, smtp,  # noqa: F811
                                                           send_mail):  # noqa: F811
    """Each period's reminder is its own mail: the second is not taken for a duplicate of
    the first (whose job is kept for a month), however short the period."""
    ref = approved(rt, sandbox)
    first = ends(rt, ref)
    assert grants.run(rt, now=first - 7 * DAY + 1)["reminded"] == 1
    [renewal] = [r for r, _ in renewals_state.opened(rt.redis) if r == ref]
    opened = renewals_state.get(rt.redis, ref)
    renewals.decide(rt, renewal, opened["renewal_id"], "approve", "still a partner",
                    Person("local:alice", email="alice@corp.example"), "console", "test")
    second = ends(rt, ref)
    assert second == first + 90 * DAY
    assert grants.run(rt, now=second - 7 * DAY + 1)["reminded"] == 1
    send_mail()
    mailed = [m for _, m in smtp.messages if "ends on" in m["Subject"]]
    assert len(mailed) == 2
    assert f"It ends on {rt.store.state(ref)['expires_at'][:10]}" in parts(mailed[1])[0]
    # Between the two, the developer was told the renewal's outcome.
    [told] = [m for _, m in smtp.messages if "renewed until" in m["Subject"]]
    renewed_to = rt.store.state(ref)["expires_at"][:10]
    assert told["Subject"] == f"Your API access is renewed until {renewed_to}"
    assert "reviewed" in parts(mailed[0])[0] and "stops working" not in parts(mailed[0])[0]


def test_a_developer_whose_renewal_is_denied_is_told_when_access_ends(
        rt, sandbox, smtp, send_mail):  # noqa: F811
    ref = approved(rt, sandbox)
    end = ends(rt, ref)
    assert grants.run(rt, now=end - 7 * DAY + 1)["reminded"] == 1
    opened = renewals_state.get(rt.redis, ref)
    renewals.decide(rt, ref, opened["renewal_id"], "deny", "project over",
                    Person("local:alice", email="alice@corp.example"), "console", "test")
    send_mail()
    expires = rt.store.state(ref)["expires_at"]
    [(to, told)] = [(r, m) for r, m in smtp.messages
                    if m["Subject"] == f"Your API access ends on {expires[:10]}"
                    and "not renewed" in parts(m)[0]]
    assert to == [ALICE]
    text = parts(told)[0]
    assert "request it again in the developer portal" in text
    assert "project over" not in text  # the reason is the admins'


def test_a_developer_whose_renewal_nobody_decided_is_told_at_the_end(
        rt, sandbox, smtp, send_mail):  # noqa: F811
    ref = approved(rt, sandbox)
    end = ends(rt, ref)
    assert grants.run(rt, now=end - 7 * DAY + 1)["reminded"] == 1
    assert grants.run(rt, now=end + 1)["expired"] == 1
    assert grants.run(rt, now=end + 2)["expired"] == 0
    send_mail()
    told = [m for _, m in smtp.messages if "not renewed" in parts(m)[0]]
    assert len(told) == 1 and told[0]["Subject"].startswith("Your API access ends on")


def test_a_grant_on_the_new_portal_ends_by_deleting_its_access_request(
        rt, portal, settings):
    rt.settings = with_portal(settings, portal)
    rt.__dict__.pop("sources", None)
    ar = ask(portal, ALICE)
    ref = f"portal-{ar['ID']}"
    assert decide.run(rt, ref, "webhook").outcome == "approve"
    assert rt.store.state(ref)["expires_at"]
    assert grants.run(rt, now=ends(rt, ref) + 1)["expired"] == 1
    assert grants.run(rt, now=ends(rt, ref) + 2)["expired"] == 0
    assert len(calls(portal, "DELETE", f"/portal-api/access_requests/{ar['ID']}")) == 1
    assert [c["active"] for c in portal.app.sandbox.credentials()] == [False]
    [expired] = events(rt, ref, "grant_expired")
    assert expired["keys_revoked"] == [shown(str(ar["ID"]))]


def test_a_grant_whose_credential_another_product_shares_does_not_end_it(
        rt, portal, settings):
    rt.settings = with_portal(settings, portal)
    rt.__dict__.pop("sources", None)
    tyk = portal.app.sandbox
    tyk.set_mode("credentials", "shared")
    ar = ask(portal, ALICE)
    ref = f"portal-{ar['ID']}"
    assert decide.run(rt, ref, "webhook").outcome == "approve"
    (app,) = tyk.apps()
    other = tyk.create_access_request(ALICE, ["Pro"], "Pro plan", app=app["ID"])
    tyk.approve_access_request(other["ID"])  # portal 1.16+: the same credential
    for late in (1, 2):  # each pass refuses; the end stays due
        assert grants.run(rt, now=ends(rt, ref) + late)["expired"] == 0
    assert calls(portal, "DELETE", "/portal-api/access_requests/") == []
    assert [c["active"] for c in tyk.credentials()] == [True]
    assert events(rt, ref, "grant_expired") == []
    [refused] = events(rt, ref, "revocation_refused_shared_credential")
    assert refused["shared_with"] == [str(other["ID"])]
    assert rt.redis.zscore(schedule.END_KEY, ref) is not None


@pytest.mark.parametrize(("grant", "line", "words"), [
    ("grant: {expires_after: 90d}", 4, "only allowed with then: approve"),
    ("grant: {expires_after: -5d}", 5, "bad duration '-5d'"),
    ("grant: {expires_after: 99999d}", 5, "bad duration '99999d'"),
    ("grant: {expires_after: 7d, remind_before: 7d}", 5, "remind_before is not shorter"),
    ("grant: {expires_after: 7d, renew: automatic}", 5, "renew"),
    ("grant: {remind_before: 7d}", 5, "expires_after"),
    ("grant: {expires_after: 90d, remind_before: 0}", 5, "bad duration 0"),
    ("grant: {expires_after: [90d]}", 5, "expires_after"),
])
def test_a_bad_grant_is_reported_at_its_line(tmp_path, grant, line, words):
    outcome = "deny" if "only allowed" in words else "approve"
    write(tmp_path / "r.yaml", f"""\
        version: 1
        rules:
          - id: partners
            then: {outcome}
            {grant}
        """)
    if outcome == "deny":
        write(tmp_path / "r.yaml", f"""\
            version: 1
            rules:
              - id: partners
                {grant}
                then: deny
            """)
    problems = check(tmp_path)
    assert [p.line for p in problems] == [line], problems
    assert words in problems[0].message


def test_a_good_grant_loads(tmp_path):
    write(tmp_path / "r.yaml", """\
        version: 1
        rules:
          - id: partners
            then: approve
            grant: {expires_after: 90d, remind_before: 7d, renew: rules}
        """)
    assert check(tmp_path) == []


@pytest.mark.slow
def test_real_workers_remind_once_and_revoke_once_across_a_restart(
        rt, sandbox, env, monkeypatch, tmp_path, settings):
    monkeypatch.setenv("APPROVER_RECONCILE_INTERVAL", "1")
    ref = approved(rt, sandbox)
    developer = rt.store.state(ref)["developer_id"]
    for key in (schedule.REMIND_KEY, schedule.END_KEY):
        rt.redis.zadd(key, {ref: time.time() - 1})  # its reminder and its end: due now
    worker_until(tmp_path / "first.log", lambda: events(rt, ref, "grant_expired"))
    # Another grant, due only now: its end shows that the restarted worker's passes ran,
    # and ran over the first grant too.
    later = approved(rt, sandbox)
    rt.redis.zadd(schedule.END_KEY, {later: time.time() - 1})
    worker_until(tmp_path / "second.log", lambda: events(rt, later, "grant_expired"))
    assert len(events(rt, ref, "grant_reminded")) == 1
    assert len(events(rt, ref, "grant_expired")) == 1
    assert events(rt, later, "grant_reminded") == []  # its reminder was not due
    deletes = sandbox.app.sandbox.calls(method="DELETE", path=KEYS + developer + "/keys/")
    assert len(deletes) == 2  # one key each, revoked once


def worker_until(log_path, done) -> None:
    """Run a real `approver worker` process until `done()`, then stop it."""
    proc, log = start_worker(log_path)
    try:
        wait_for(done, 60)
    finally:
        stop_worker(proc, log)


def renewing(rt, settings, grant="renew: rules"):
    """The partners rule's grant renewed by the rules from now on."""
    trust = settings.rules_path / "30-trust.yaml"
    trust.write_text(trust.read_text().replace("renew: review", grant))
    rt.__dict__.pop("rules", None)


def test_renewed_by_the_rules_the_grant_is_extended_and_nothing_is_revoked(
        rt, sandbox, settings, smtp, send_mail):  # noqa: F811
    renewing(rt, settings)
    ref = approved(rt, sandbox)
    first_end = ends(rt, ref)
    assert grants.run(rt, now=first_end - 7 * DAY + 1)["renewed"] == 1
    assert ends(rt, ref) == first_end + 90 * DAY
    for late in (1, 2):  # passes at the first end: nothing ends any more
        assert grants.run(rt, now=first_end + late) == {"reminded": 0, "renewed": 0,
                                                        "expired": 0}
    assert sandbox.app.sandbox.calls(method="DELETE", path=KEYS) == []
    [renewed] = events(rt, ref, "grant_renewed")
    assert (renewed["rule"], renewed["expires_at"]) == ("partners",
                                                        rt.store.state(ref)["expires_at"])
    send_mail()
    assert [m for r, m in smtp.messages if "ends on" in m["Subject"]] == []


def test_when_the_rules_no_longer_approve_the_grant_ends(rt, sandbox, settings):
    renewing(rt, settings)
    ref = approved(rt, sandbox)
    # A rule before the others now leaves partners to a person.
    write(settings.rules_path / "05-recertify.yaml", """\
        version: 1
        rules:
          - id: partners-recertified
            when: {developer.email_domain: {ends_with: .partner.example}}
            then: review
        """)
    rt.__dict__.pop("rules", None)
    end = ends(rt, ref)
    assert grants.run(rt, now=end - 7 * DAY + 1)["reminded"] == 1
    [refused] = events(rt, ref, "grant_not_renewed")
    assert (refused["outcome"], refused["rule"]) == ("review", "partners-recertified")
    assert grants.run(rt, now=end + 1)["expired"] == 1
    assert events(rt, ref, "grant_renewed") == []
    assert len(sandbox.app.sandbox.calls(method="DELETE", path=KEYS)) == 1


def test_renewal_by_the_rules_at_the_end_when_there_is_no_reminder(rt, sandbox, settings):
    trust = settings.rules_path / "30-trust.yaml"
    trust.write_text(trust.read_text().replace("remind_before: 7d, renew: review",
                                               "renew: rules"))
    ref = approved(rt, sandbox)
    assert not rt.store.state(ref)["remind_at"]
    end = ends(rt, ref)
    assert grants.run(rt, now=end + 1)["renewed"] == 1
    assert ends(rt, ref) == end + 90 * DAY
    assert sandbox.app.sandbox.calls(method="DELETE", path=KEYS) == []


def test_the_console_page_and_decisions_show_say_when_access_ends(rt, sandbox, app,
                                                                 capsys):
    ref = approved(rt, sandbox)
    expires = rt.store.state(ref)["expires_at"]
    add_admin(rt)
    console = app.test_client()
    assert sign_in(console).status_code == 303
    page = console.get(f"/console/requests/{ref}").data.decode()
    assert "<dt>Access ends</dt>" in page
    assert f"{expires} (in 90d; renewal: a person decides in the review inbox before it ends)" \
        in page
    assert cli.main(["decisions", "show", ref]) == 0
    assert f"access ends: {expires} (in 90d;" in capsys.readouterr().out
    grants.run(rt, now=ends(rt, ref) + 1)
    page = console.get(f"/console/requests/{ref}").data.decode()
    assert f"{expires} (ended: keys revoked at" in page


def test_two_passes_at_once_revoke_once(rt, sandbox, settings):
    ref = approved(rt, sandbox)
    developer = rt.store.state(ref)["developer_id"]
    at = ends(rt, ref) + 1
    start, counts = threading.Barrier(2), []

    def one_pass():
        other = runtime.Runtime(settings)  # each worker process has its own
        start.wait()
        counts.append(grants.run(other, now=at)["expired"])

    threads = [threading.Thread(target=one_pass) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(counts) == [0, 1]
    assert len(sandbox.app.sandbox.calls(method="DELETE",
                                         path=KEYS + developer + "/keys/")) == 1
    assert len(events(rt, ref, "grant_expired")) == 1
