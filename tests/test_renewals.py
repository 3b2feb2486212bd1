"""Grants with `renew: review`: at the reminder a renewal item waits in the review inbox; a
person's approve extends the grant from its end, a deny or no decision lets it end and
its keys are revoked once; nothing is asked of Tyk for it, and it is never taken for a
pending key request."""

import re
import threading
import time

import pytest

from approver import cli
from approver.pipeline import billing, decide, grants, reconcile, renewals, review, runtime
from approver.pipeline.steps import NotYours, Person
from approver.state import accounts
from approver.state import grants as schedule
from approver.state import renewals as kept
from tests.conftest import with_portal
from tests.console_support import GRANT, PASSWORD, csrf, sign_in
from tests.test_grants import DAY, approved, ends, events, settings, worker_until  # noqa: F401
from tests.test_mail import SENDER, send_mail, smtp  # noqa: F401 (fixtures)
from tests.test_portal_pipeline import ask
from tests.test_review import ALICE

KEYS = "/api/portal/developers/"
_RENEWAL_ID = re.compile(r'name="renewal_id" value="([0-9a-f]+)"')


@pytest.fixture(params=["classic", "portal"])
def granted(request, rt, sandbox, settings):  # noqa: F811
    """A partner's request approved for 90 days with `renew: review` (7 days' reminder),
    on each portal; its reference and a function counting revocations in Tyk."""
    assert "renew: review" in GRANT
    if request.param == "classic":
        ref = approved(rt, sandbox)
        developer = rt.store.state(ref)["developer_id"]
        return ref, lambda: len(sandbox.app.sandbox.calls(
            method="DELETE", path=KEYS + developer + "/keys/"))
    portal = request.getfixturevalue("portal")
    rt.settings = with_portal(settings, portal)
    rt.__dict__.pop("sources", None)
    ar = ask(portal, ALICE)
    ref = f"portal-{ar['ID']}"
    assert decide.run(rt, ref, "webhook").outcome == "approve"
    return ref, lambda: len(portal.app.sandbox.calls(
        method="DELETE", path=f"/portal-api/access_requests/{ar['ID']}"))


def remind(rt, ref) -> float:
    """Run the pass at the grant's reminder: its renewal opens; the end it is about."""
    end = ends(rt, ref)
    assert grants.run(rt, now=end - 7 * DAY + 1)["reminded"] == 1
    return end


def console(app, rt, name="alice", email=""):
    accounts.add(rt.store, name, PASSWORD, email=email)
    client = app.test_client()
    assert sign_in(client, name).status_code == 303
    return client


def decide_in_console(client, ref, outcome, reason="", renewal_id=None):
    page = client.get(f"/console/requests/{ref}").data.decode()
    if renewal_id is None:
        renewal_id = _RENEWAL_ID.search(page).group(1)
    return client.post(f"/console/requests/{ref}/renewal", data={
        "csrf_token": csrf(page), "renewal_id": renewal_id, "outcome": outcome,
        "reason": reason})


def test_a_renewal_approved_by_a_person_moves_the_end_and_nothing_is_revoked(
        rt, app, sandbox, granted, capsys):
    ref, revocations = granted
    end = remind(rt, ref)
    expires = rt.store.state(ref)["expires_at"]
    client = console(app, rt)
    inbox = client.get("/console/").data.decode()
    assert f"renewal of access ending {expires}" in inbox
    page = client.get(f"/console/requests/{ref}").data.decode()
    assert f"renewal of access ending {expires}" in page
    assert cli.main(["decisions", "show", ref]) == 0
    assert f"renewal: renewal of access ending {expires}: awaiting a person" in \
        capsys.readouterr().out
    before = len(sandbox.app.sandbox.calls())
    answer = decide_in_console(client, ref, "approve")
    assert answer.status_code == 303
    assert ends(rt, ref) == end + 90 * DAY
    assert rt.redis.zscore(schedule.END_KEY, ref) == end + 90 * DAY
    assert sandbox.app.sandbox.calls()[before:] == []  # nothing asked of Tyk
    [renewed] = events(rt, ref, "grant_renewed")
    assert (renewed["by"], renewed["via"]) == ("local:alice", "console")
    assert renewed["expires_at"] == rt.store.state(ref)["expires_at"]
    for late in (1, 2):  # passes at the first end: nothing ends
        assert grants.run(rt, now=end + late)["expired"] == 0
    assert revocations() == 0 and events(rt, ref, "grant_expired") == []
    assert f"renewal of access ending {expires}" not in client.get("/console/").data.decode()
    assert cli.main(["decisions", "show", ref]) == 0
    assert "approved by local:alice" in capsys.readouterr().out


def test_a_renewal_denied_ends_the_grant_once(rt, app, granted):
    ref, revocations = granted
    end = remind(rt, ref)
    client = console(app, rt)
    assert decide_in_console(client, ref, "deny", "").status_code == 400  # needs a reason
    assert decide_in_console(client, ref, "deny", "project over").status_code == 303
    assert ends(rt, ref) == end
    [denied] = events(rt, ref, "renewal_denied")
    assert (denied["by"], denied["reason"]) == ("local:alice", "project over")
    assert grants.run(rt, now=end + 1)["expired"] == 1
    assert grants.run(rt, now=end + 2)["expired"] == 0
    assert revocations() == 1 and len(events(rt, ref, "grant_expired")) == 1
    assert events(rt, ref, "grant_renewed") == []


def test_a_renewal_nobody_decides_ends_the_grant_once(rt, app, granted):
    ref, revocations = granted
    end = remind(rt, ref)
    client = console(app, rt)
    page = client.get(f"/console/requests/{ref}").data.decode()
    renewal_id = _RENEWAL_ID.search(page).group(1)
    assert grants.run(rt, now=end + 1)["expired"] == 1
    assert grants.run(rt, now=end + 2)["expired"] == 0
    assert revocations() == 1
    assert len(events(rt, ref, "renewal_lapsed")) == 1
    # Too late: the form the person still has open is refused, and nothing is renewed.
    late = decide_in_console(client, ref, "approve", renewal_id=renewal_id)
    assert late.status_code == 409 and b"not decided in time" in late.data
    assert events(rt, ref, "grant_renewed") == [] and ends(rt, ref) == end


def test_a_renewal_is_not_a_pending_request_for_the_claims_or_the_reconciler(
        rt, app, sandbox, granted):
    ref, revocations = granted
    remind(rt, ref)
    before = len(sandbox.app.sandbox.calls())
    client = console(app, rt)
    page = client.get("/console/")
    answer = client.post("/console/decide", data={"csrf_token": csrf(page.data),
                                                  "ids": [ref], "outcome": "approve"})
    assert answer.status_code == 409 and b"decide the renewal on its page" in answer.data
    reconcile.run(rt)
    state = rt.store.state(ref)
    assert (state["state"], state["outcome"]) == ("applied", "approve")
    assert kept.get(rt.redis, ref)["state"] == kept.OPEN
    assert [e["event"] for e in rt.store.entries(50, request_id=ref)
            if e["event"] in ("decided", "claimed", "skipped")] == ["decided"]
    calls = sandbox.app.sandbox.calls()[before:]
    assert [c for c in calls if c["method"] != "GET"] == []
    assert revocations() == 0


def test_a_renewal_is_decided_from_the_command_line(rt, app, granted, capsys):
    ref, revocations = granted
    end = remind(rt, ref)
    accounts.add(rt.store, "carol", PASSWORD, email=ALICE)
    # The developer's own address may not renew their own access, here either.
    assert cli.main(["review", "approve", ref, "--by", "carol"]) == 1
    assert "nobody decides a request of their own email address" in capsys.readouterr().err
    assert cli.main(["review", "approve", ref, "--by", "alice"]) == 0
    said = capsys.readouterr().out
    assert said.startswith(f"key request {ref}: renewal of access ending ")
    assert f"renewed by alice, until {rt.store.state(ref)['expires_at']}" in said
    assert ends(rt, ref) == end + 90 * DAY
    [renewed] = events(rt, ref, "grant_renewed")
    assert (renewed["by"], renewed["via"]) == ("alice", "cli")
    # Decided: the same command again is refused, and nothing moves twice.
    assert cli.main(["review", "deny", ref, "--reason", "late", "--by", "bob"]) == 1
    assert "no longer pending" in capsys.readouterr().err
    assert ends(rt, ref) == end + 90 * DAY and revocations() == 0


def test_a_renewal_denied_from_the_command_line_lets_the_access_end(rt, granted, capsys):
    ref, revocations = granted
    end = remind(rt, ref)
    for bad in (" ", "x" * 600):  # a deny needs a reason, and not an oversized one
        assert cli.main(["review", "deny", ref, "--reason", bad, "--by", "bob"]) == 1
        assert "reason" in capsys.readouterr().err
    assert kept.get(rt.redis, ref)["state"] == kept.OPEN
    assert cli.main(["review", "deny", ref, "--reason", "project over", "--by", "bob"]) == 0
    assert "denied by bob: the access ends then" in capsys.readouterr().out
    [denied] = events(rt, ref, "renewal_denied")
    assert (denied["by"], denied["via"], denied["reason"]) == ("bob", "cli", "project over")
    assert grants.run(rt, now=end + 1)["expired"] == 1 and revocations() == 1


def _revoke_by_billing(rt, ref) -> None:
    """What a billing cancellation does to the request's keys (`billing.revoke_key`)."""
    record = rt.store.state(ref)
    developer_id = record["developer_id"]
    mine = {k: a for k, a in rt.store.approved_keys(developer_id).items()
            if a.get("request_id") == ref}
    assert mine
    for key_id, about in mine.items():
        assert billing.revoke_key(rt, rt.sources[record.get("portal") or "classic"],
                                  developer_id, key_id, about, "subscription canceled")


def test_a_renewal_whose_keys_billing_revoked_is_closed_and_refused(rt, app, granted):
    ref, revocations = granted
    end = remind(rt, ref)
    client = console(app, rt)
    label = f"renewal of access ending {rt.store.state(ref)['expires_at']}"
    assert label in client.get("/console/").data.decode()
    page = client.get(f"/console/requests/{ref}").data.decode()
    renewal_id = _RENEWAL_ID.search(page).group(1)
    _revoke_by_billing(rt, ref)
    assert revocations() == 1
    renewal = kept.get(rt.redis, ref)
    assert (renewal["state"], renewal["reason"]) == (
        kept.ENDED, "its keys were revoked (subscription canceled)")
    [closed] = events(rt, ref, "renewal_closed")
    assert (closed["by"], closed["renewal_id"]) == ("revocation", renewal_id)
    # Out of the inbox, its page says why and has no form; the form the person still has
    # open is refused, saying why.
    assert label not in client.get("/console/").data.decode()
    page = client.get(f"/console/requests/{ref}").data.decode()
    assert f"{label}: closed, its keys were revoked (subscription canceled)" in page
    assert _RENEWAL_ID.search(page) is None
    late = decide_in_console(client, ref, "approve", renewal_id=renewal_id)
    assert late.status_code == 409 and b"was closed: its keys were revoked" in late.data
    assert events(rt, ref, "grant_renewed") == [] and ends(rt, ref) == end
    # At the end nothing is revoked twice, and nobody is told the renewal lapsed.
    assert grants.run(rt, now=end + 1)["expired"] == 1
    assert revocations() == 1 and events(rt, ref, "renewal_lapsed") == []


def test_a_person_renewing_while_billing_revokes_one_of_them_wins(rt, sandbox, settings):  # noqa: F811
    ref = approved(rt, sandbox)
    end = remind(rt, ref)
    renewal_id = kept.get(rt.redis, ref)["renewal_id"]
    start, errors = threading.Barrier(2), []

    def person():
        each = runtime.Runtime(settings)  # the web process's own
        start.wait()
        try:
            renewals.decide(each, ref, renewal_id, "approve", "", Person("local:alice"),
                            "console", "127.0.0.1")
        except review.Refused:
            pass
        except Exception as exc:
            errors.append(exc)

    def billing_job():
        each = runtime.Runtime(settings)  # the worker's own
        start.wait()
        try:
            _revoke_by_billing(each, ref)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=f) for f in (person, billing_job)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    state = kept.get(rt.redis, ref)["state"]
    renewed, closed = events(rt, ref, "grant_renewed"), events(rt, ref, "renewal_closed")
    # One of them decided the renewal; the keys are revoked either way.
    assert (state, len(renewed), len(closed)) in ((kept.APPROVED, 1, 0), (kept.ENDED, 0, 1))
    assert len(events(rt, ref, "revoked")) == 1
    assert ends(rt, ref) == (end + 90 * DAY if state == kept.APPROVED else end)


def test_a_grant_whose_keys_were_revoked_is_neither_reminded_nor_put_to_a_person(
        rt, sandbox, granted):
    ref, revocations = granted
    end = ends(rt, ref)
    _revoke_by_billing(rt, ref)
    assert grants.run(rt, now=end - 7 * DAY + 1)["reminded"] == 0
    assert kept.get(rt.redis, ref) is None
    assert events(rt, ref, "grant_reminded") == []
    [skipped] = events(rt, ref, "grant_not_reminded")
    assert skipped["why"] == "its keys were revoked already"
    assert revocations() == 1


def test_hostile_decisions_on_a_renewal_are_refused(rt, app, sandbox, settings):  # noqa: F811
    ref = approved(rt, sandbox)
    end = remind(rt, ref)
    client = console(app, rt)
    page = client.get(f"/console/requests/{ref}").data.decode()
    renewal_id = _RENEWAL_ID.search(page).group(1)
    form = {"renewal_id": renewal_id, "outcome": "approve", "reason": ""}
    # Forged: no CSRF token, or another session's.
    assert client.post(f"/console/requests/{ref}/renewal", data=form).status_code in (400, 403)
    other = console(app, rt, "bob")
    theirs = csrf(other.get("/console/").data)
    assert client.post(f"/console/requests/{ref}/renewal",
                       data={**form, "csrf_token": theirs}).status_code in (400, 403)
    # Not signed in at all.
    anonymous = app.test_client()
    assert anonymous.post(f"/console/requests/{ref}/renewal", data=form).status_code in (
        302, 303, 401, 403)
    # Another person's: the developer's own address may not renew their own access.
    own = console(app, rt, "carol", email=ALICE)
    assert decide_in_console(own, ref, "approve").status_code == 403
    # Made up, or another request's renewal: not the renewal awaiting a decision here.
    assert decide_in_console(client, ref, "approve", renewal_id="0" * 32).status_code == 409
    other = approved(rt, sandbox)
    remind(rt, other)
    theirs = kept.get(rt.redis, other)["renewal_id"]
    assert decide_in_console(client, ref, "approve", renewal_id=theirs).status_code == 409
    assert kept.get(rt.redis, other)["state"] == kept.OPEN
    assert decide_in_console(client, ref, "maybe").status_code == 400
    # Malformed and oversized: a reason over the limit, a body over the limit, no such id.
    assert decide_in_console(client, ref, "approve", "x" * 600).status_code == 400
    page = client.get(f"/console/requests/{ref}").data
    assert client.post(f"/console/requests/{ref}/renewal", data={
        "csrf_token": csrf(page), "renewal_id": renewal_id, "outcome": "approve",
        "reason": "x" * (2 * 1024 * 1024)}).status_code == 413
    assert client.post("/console/requests/not%20an%20id/renewal", data={
        "csrf_token": csrf(page), **form}).status_code == 404
    assert kept.get(rt.redis, ref)["state"] == kept.OPEN and ends(rt, ref) == end
    # Decided, then the same form replayed: one renewal.
    assert decide_in_console(client, ref, "approve", renewal_id=renewal_id).status_code == 303
    again = decide_in_console(client, ref, "approve", renewal_id=renewal_id)
    assert again.status_code == 409 and b"already approved by local:alice" in again.data
    assert len(events(rt, ref, "grant_renewed")) == 1 and ends(rt, ref) == end + 90 * DAY
    refused = [e["why"] for e in events(rt, ref, "renewal_refused")]
    assert [why.split(" ")[-1] for why in reversed(refused)] == [
        "address", "again", "again", "local:alice"]  # own, made up, another's, replayed


def test_two_people_deciding_one_renewal_at_once_one_wins(rt, sandbox, settings):  # noqa: F811
    ref = approved(rt, sandbox)
    end = remind(rt, ref)
    renewal_id = kept.get(rt.redis, ref)["renewal_id"]
    start, results = threading.Barrier(2), []

    def one(name, outcome):
        each = runtime.Runtime(settings)  # each web process has its own
        start.wait()
        try:
            renewals.decide(each, ref, renewal_id, outcome, "checked", Person(name),
                            "console", "127.0.0.1")
            results.append((name, "won"))
        except review.Refused:
            results.append((name, "refused"))

    threads = [threading.Thread(target=one, args=a) for a in
               (("local:alice", "approve"), ("local:bob", "deny"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r for _, r in results) == ["refused", "won"]
    (winner,) = [n for n, r in results if r == "won"]
    renewal = kept.get(rt.redis, ref)
    assert renewal["by"] == winner
    renewed = events(rt, ref, "grant_renewed")
    if winner == "local:alice":
        assert len(renewed) == 1 and ends(rt, ref) == end + 90 * DAY
    else:
        assert renewed == [] and ends(rt, ref) == end


def test_an_approval_whose_extension_was_lost_is_carried_out_at_the_end(
        rt, sandbox, settings):  # noqa: F811
    ref = approved(rt, sandbox)
    end = remind(rt, ref)
    renewal_id = kept.get(rt.redis, ref)["renewal_id"]
    # The person's approval is recorded, and the process stops before the grant moves.
    assert kept.decide(rt.redis, ref, renewal_id, kept.APPROVED, by="local:alice",
                       via="console")[0]
    assert grants.run(rt, now=end + 1) == {"reminded": 0, "renewed": 1, "expired": 0}
    assert ends(rt, ref) == end + 90 * DAY
    assert grants.run(rt, now=end + 2)["expired"] == 0
    assert sandbox.app.sandbox.calls(method="DELETE", path=KEYS) == []
    assert len(events(rt, ref, "grant_renewed")) == 1


def test_the_person_the_developer_is_may_not_renew_through_the_pipeline(rt, sandbox):
    ref = approved(rt, sandbox)
    remind(rt, ref)
    renewal_id = kept.get(rt.redis, ref)["renewal_id"]
    with pytest.raises(NotYours):
        renewals.decide(rt, ref, renewal_id, "approve", "", Person("oidc:a", (), ALICE),
                        "console", "127.0.0.1")


@pytest.mark.slow
def test_real_workers_remind_once_and_a_renewed_grant_is_not_revoked_across_a_restart(
        rt, app, sandbox, env, monkeypatch, tmp_path, smtp, send_mail):  # noqa: F811
    monkeypatch.setenv("APPROVER_RECONCILE_INTERVAL", "1")
    monkeypatch.setenv("APPROVER_SMTP_URL", smtp.url)
    monkeypatch.setenv("APPROVER_MAIL_FROM", SENDER)
    ref = approved(rt, sandbox)
    rt.redis.zadd(schedule.REMIND_KEY, {ref: time.time() - 1})  # its reminder: due now
    worker_until(tmp_path / "first.log", lambda: kept.get(rt.redis, ref) and [
        m for _, m in smtp.messages if "ends on" in m["Subject"]])
    client = console(app, rt)
    assert decide_in_console(client, ref, "approve").status_code == 303
    # The end it was about, due now for a restarted worker: renewed, so nothing revoked,
    # and the grant is due again at its new end.
    rt.redis.zadd(schedule.END_KEY, {ref: time.time() - 1})
    worker_until(tmp_path / "second.log",
                 lambda: events(rt, ref, "grant_expired") or
                 (rt.redis.zscore(schedule.END_KEY, ref) or 0) > time.time())
    assert rt.redis.zscore(schedule.END_KEY, ref) == ends(rt, ref)
    assert len([m for _, m in smtp.messages if "ends on" in m["Subject"]]) == 1
    assert len(events(rt, ref, "grant_reminded")) == 1
    assert len(events(rt, ref, "renewal_opened")) == 1
    assert events(rt, ref, "grant_expired") == []
    assert sandbox.app.sandbox.calls(method="DELETE", path=KEYS) == []
