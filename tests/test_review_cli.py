"""`approver review …` and `approver admin …`: the inbox and local accounts from a shell."""

import io
import json
import os
import subprocess
import sys

import pytest

from approver import cli
from approver import state as st
from approver.state import accounts
from tests.test_review import CAROL, DAVE, in_review


def run(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_review_list_shows_who_what_why_and_age(capsys, rt, sandbox):
    carol = in_review(rt, sandbox)
    code, out, _ = run(capsys, "review", "list")
    assert code == 0
    assert out.splitlines()[0].split()[:3] == ["REQUEST", "PORTAL", "KIND"]
    assert carol in out and CAROL in out and "Free" in out and "free-mail-to-review" in out
    assert "REVIEW" in out
    code, _, err = run(capsys, "review", "list", "--rule", "nope")
    assert code == 2 and "no rule 'nope' in the rules in force" in err
    assert run(capsys, "review", "list", "--rule", "partners")[0] == 0  # a rule, none here


def test_review_list_json_is_one_array_and_filters_apply(capsys, rt, sandbox):
    carol = in_review(rt, sandbox)
    dave = in_review(rt, sandbox, DAVE, fields={"company": "Dave Ltd"})
    rows = json.loads(run(capsys, "review", "list", "--json")[1])
    assert [r["id"] for r in rows] == [carol, dave]
    assert {"id", "portal", "developer_email", "policies", "rule", "reason", "age"} <= set(
        rows[0])
    only = json.loads(run(capsys, "review", "list", "--json", "--rule",
                          "use-case-required")[1])
    assert [r["id"] for r in only] == [dave]
    assert json.loads(run(capsys, "review", "list", "--json", "--portal", "new")[1]) == []
    assert json.loads(run(capsys, "review", "list", "--json", "--older-than", "2h")[1]) == []


def test_review_list_refuses_a_bad_age(capsys, rt):
    with pytest.raises(SystemExit) as exc:
        cli.main(["review", "list", "--older-than", "soon"])
    assert exc.value.code == 2
    assert "duration" in capsys.readouterr().err


def test_review_show_gives_the_request_facts_and_trace(capsys, rt, sandbox):
    carol = in_review(rt, sandbox)
    code, out, _ = run(capsys, "review", "show", carol)
    assert code == 0
    assert "developer.email_domain" in out and "✓ rule free-mail-to-review: matched" in out
    assert "developer: carol@gmail.com · Carol Chen · Chen Consulting" in out
    shown = json.loads(run(capsys, "review", "show", carol, "--json")[1])
    assert shown["request"]["id"] == carol and shown["in_inbox"] is True
    assert shown["facts"]["developer.email_domain"] == "gmail.com"
    assert shown["trace"][-1]["matched"] is True
    assert run(capsys, "review", "show", "64b00000000000000000ffff")[0] == 1


def test_review_approve_applies_in_tyk_and_records_who(capsys, rt, sandbox):
    carol = in_review(rt, sandbox)
    code, out, _ = run(capsys, "review", "approve", carol, "--reason", "known customer",
                       "--by", "alice")
    assert code == 0 and f"key request {carol} approved by alice in Tyk" in out
    assert sandbox.app.sandbox.get_key_request(carol)["approved"] is True
    state = rt.store.state(carol)
    assert (state["decided_by"], state["via"], state["reason"]) == (
        "alice", "cli", "known customer")
    assert "@" in state["decided_from"]
    assert state["revision"]


def test_review_deny_needs_a_reason_and_refuses_a_decided_request(capsys, rt, sandbox):
    carol = in_review(rt, sandbox)
    with pytest.raises(SystemExit):
        cli.main(["review", "deny", carol, "--by", "alice"])
    capsys.readouterr()
    code, _, err = run(capsys, "review", "deny", carol, "--reason", " ", "--by", "alice")
    assert code == 1 and "a reason is required" in err
    assert run(capsys, "review", "deny", carol, "--reason", "spam", "--by", "alice")[0] == 0
    assert sandbox.app.sandbox.get_key_request(carol) is None
    code, _, err = run(capsys, "review", "approve", carol, "--by", "bob")
    assert code == 1
    assert "no longer pending: denied by alice" in err


def test_review_decision_on_an_unknown_request_exits_1(capsys, rt, sandbox):
    code, _, err = run(capsys, "review", "approve", "64b00000000000000000ffff", "--by", "a")
    assert code == 1 and "no record" in err


def test_review_approve_of_a_request_tyk_decided_meanwhile_exits_1(capsys, rt, sandbox):
    carol = in_review(rt, sandbox)
    sandbox.app.sandbox.approve_key_request(carol)
    code, _, err = run(capsys, "review", "deny", carol, "--reason", "no", "--by", "alice")
    assert code == 1 and "approved in Tyk meanwhile" in err
    assert rt.store.state(carol)["decided_by"] == "tyk"
    assert rt.store.state(carol)["state"] == st.APPLIED


def test_admin_add_reads_the_password_from_stdin_and_remove_ends_it(
        capsys, rt, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("correct horse battery\n"))
    assert run(capsys, "admin", "add", "alice")[0] == 0
    assert accounts.verify(rt.store, "alice", "correct horse battery")
    assert not accounts.verify(rt.store, "alice", "wrong password!")
    assert run(capsys, "admin", "list")[1].splitlines()[1].split() == ["alice", "-", "-"]
    sid = accounts.start_session(rt.store, "local:alice", "local", "127.0.0.1", 60, 60)
    assert run(capsys, "admin", "remove", "alice")[0] == 0
    assert accounts.touch_session(rt.store, sid, 60) is None
    assert not accounts.verify(rt.store, "alice", "correct horse battery")
    assert run(capsys, "admin", "remove", "alice")[0] == 1


def test_admin_add_refuses_short_passwords_and_odd_names(capsys, rt, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    code, _, err = run(capsys, "admin", "add", "alice")
    assert code == 2 and "at least 12" in err
    for name in ("al ice<script>", "alice\n"):  # `$` alone would let the newline through
        code, _, err = run(capsys, "admin", "add", name)
        assert code == 2 and "not a usable name" in err


def test_password_hashes_never_hold_the_password(rt):
    accounts.add(rt.store, "alice", "correct horse battery")
    raw = rt.redis.hget(accounts.ACCOUNTS_KEY, "alice").decode()
    assert "correct horse" not in raw and "$argon2id$" in raw


def test_admin_add_as_a_command_takes_the_password_on_stdin(env):
    done = subprocess.run([sys.executable, "-m", "approver", "admin", "add", "bob"],
                          input="a long enough password\n", capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "added console account bob" in done.stdout


def test_a_cli_decision_that_fails_releases_its_claim_and_logs_why(capsys, rt, sandbox):
    from approver.pipeline import runtime

    carol = in_review(rt, sandbox)
    shell = runtime.Runtime(rt.settings.with_(dashboard_url=None, dashboard_secret=None))
    runtime.install(shell)  # a shell without the Dashboard settings
    try:
        code, _, err = run(capsys, "review", "approve", carol, "--by", "alice")
    finally:
        runtime.install(rt)
    assert code == 2 and "set APPROVER_DASHBOARD_URL and APPROVER_DASHBOARD_SECRET" in err
    assert rt.store.claim_of(carol) is None
    dropped = rt.store.entries(1)[0]
    assert (dropped["event"], dropped["by"], dropped["outcome"]) == (
        "claim_dropped", "alice", "approve")
    assert dropped["why"] and rt.store.state(carol)["state"] == st.IN_REVIEW


def test_a_decision_at_a_terminal_prints_the_answer_not_the_log(rt, sandbox):
    carol = in_review(rt, sandbox)
    env = {**os.environ, "APPROVER_REDIS_URL": rt.settings.redis_url,
           "APPROVER_DASHBOARD_URL": rt.settings.dashboard_url,
           "APPROVER_DASHBOARD_SECRET": rt.settings.dashboard_secret}
    done = subprocess.run([sys.executable, "-m", "approver", "review", "approve", carol,
                           "--by", "alice"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"key request {carol} approved by alice in Tyk"
    assert done.stderr == ""  # no INFO lines unless --log-level asks for them
