"""The `approver` command: rules tooling, the decision log, replay, billing, exit codes."""

import json
import shutil
import subprocess
import sys

import pytest

from approver import cli
from approver import state as st
from approver.state.packed import MARK, unpack
from approver.web import create_app
from tests.conftest import ROOT, WEBHOOK_TOKEN

ALICE, BOB, CAROL = "alice@acme.partner.example", "bob@mailinator.com", "carol@gmail.com"
FREE = "64b0000000000000000000b1"


def run(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_rules_check_passes_on_the_shipped_rules(capsys):
    code, out, _ = run(capsys, "rules", "check", str(ROOT / "rules"))
    assert code == 0
    assert "ok" in out


def test_rules_check_fails_with_file_and_line(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nrules:\n  - id: x\n    when:\n      developer.emial: a\n"
                   "    then: approve\n")
    code, out, _ = run(capsys, "rules", "check", str(bad))
    assert code == 1
    assert f"{bad}:5:" in out
    assert "developer.email" in out  # the valid names are listed


def test_a_rule_file_with_several_problems_is_one_line_each_for_every_command(
        capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nrules:\n  - id: x\n    when: {developer.emial: a}\n"
                   "    then: approve\n  - id: y\n    when: {developer.emial: b}\n"
                   "    then: maybe\n")
    facts = tmp_path / "facts.json"
    facts.write_text("{}")
    code, out, _ = run(capsys, "rules", "check", str(bad))
    assert code == 1 and len(out.splitlines()) >= 2
    for argv in (("rules", "explain", "--rules", str(bad), "--file", str(facts)),
                 ("rules", "backtest", str(bad))):
        code, _, err = run(capsys, *argv)
        lines = err.splitlines()
        assert code == 2 and len(lines) >= 2, err
        assert all(line.startswith(f"approver: {bad}:") for line in lines), err
        assert "\\n" not in err


@pytest.mark.parametrize("argv, message", [
    (("sandbox", "--bind", "foo"), "--bind must be host:port"),
    (("sandbox", "--portal", "new", "--webhook-header", "foo"),
     "--webhook-header must be NAME:VALUE, got 'foo'"),
])
def test_sandbox_options_that_do_not_parse_are_one_clear_line(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 2 and err.startswith("approver: ") and message in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("argv", [("decisions", "list", "--limit", "-3"),
                                  ("status", "--last", "x"),
                                  ("rules", "backtest", "rules", "--show", "-1")])
def test_counts_below_zero_are_refused_by_the_parser(capsys, argv):
    with pytest.raises(SystemExit) as exit_:
        cli.main(list(argv))
    assert exit_.value.code == 2
    assert "a whole number >= 0" in capsys.readouterr().err


def test_rules_test_passes_on_the_shipped_rules_and_reaches_every_rule(capsys):
    code, out, _ = run(capsys, "rules", "test", str(ROOT / "rules"))
    assert code == 0, out
    assert "unreached" not in out.lower() or "unreached: none" in out.lower()


def test_rules_test_fails_when_a_case_fails(capsys, tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    (rules / "tests" / "wrong.yaml").write_text(
        "cases:\n  - name: gmail is approved (wrong)\n    facts: {developer.email: a@gmail.com,"
        " policy.tags: [free], request.fields.use_case: x}\n"
        "    expect: {outcome: approve}\n")
    code, out, _ = run(capsys, "rules", "test", str(rules))
    assert code == 1
    assert "gmail is approved (wrong)" in out


def test_rules_explain_a_facts_file_readably_and_as_json(capsys, tmp_path):
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps({"developer.email": "x@mailinator.com",
                                 "developer.email_disposable": True}))
    code, out, _ = run(capsys, "rules", "explain", "--file", str(facts),
                       "--rules", str(ROOT / "rules"))
    assert code == 0
    assert "outcome:  deny" in out and "rule deny-disposable-email: matched" in out
    code, out, _ = run(capsys, "rules", "explain", "--file", str(facts),
                       "--rules", str(ROOT / "rules"), "--json")
    decision = json.loads(out)
    assert decision["outcome"] == "deny"
    assert decision["trace"][0]["conditions"][0] == {
        "fact": "developer.email_disposable", "actual": True, "op": "eq", "expected": True,
        "result": True}


def test_rules_explain_a_tyk_event_file(capsys, tmp_path):
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"event": "key_request_event.submitted", "data": {
        "id": "abc", "apply_policies": [FREE], "fields": {"use_case": "x"},
        "portal_developer": {"id": "d", "email": "carol@gmail.com", "inactive": False}}}))
    code, out, _ = run(capsys, "rules", "explain", "--file", str(event),
                       "--rules", str(ROOT / "rules"))
    assert code == 0
    # An event file holds no policy records: the paid-plan rule cannot tell, so a human decides.
    assert "outcome:  review\nrule:     paid-plans-need-billing\n" in out
    assert "policy.tags is unknown (policy 64b0000000000000000000b1 was not fetched)" in out

    # The installed lists are read offline; bob's domain is on the disposable one.
    event.write_text(json.dumps({"event": "key_request_event.submitted", "data": {
        "id": "abd", "apply_policies": [FREE],
        "portal_developer": {"id": "b", "email": "bob@mailinator.com", "inactive": False}}}))
    code, out, _ = run(capsys, "rules", "explain", "--file", str(event),
                       "--rules", str(ROOT / "rules"))
    assert "outcome:  deny\nrule:     deny-disposable-email\n" in out
    assert "disposable-email-domains " in out


def test_rules_explain_a_live_request_applies_nothing(capsys, rt, sandbox):
    request = sandbox.app.sandbox.create_key_request(ALICE, [FREE], {"use_case": "x"})
    code, out, _ = run(capsys, "rules", "explain", "--request", request["id"])
    assert code == 0
    assert "rule:     partners" in out
    assert sandbox.app.sandbox.calls(method="PUT") == []
    assert rt.store.state(request["id"]) is None


def test_rules_explain_an_unreadable_file_is_a_clear_error(capsys, tmp_path):
    code, _, err = run(capsys, "rules", "explain", "--file", str(tmp_path / "missing.json"))
    assert code == 2
    assert "cannot read JSON" in err


def test_rules_facts_lists_the_vocabulary(capsys):
    code, out, _ = run(capsys, "rules", "facts")
    assert code == 0
    for name in ("developer.email_domain", "billing.status", "contains_any", "matches"):
        assert f"`{name}`" in out


def test_docs_rules_md_is_generated_from_the_registries(capsys, tmp_path):
    # docs/rules.md must not go stale: regenerate it and compare.
    out = tmp_path / "rules.md"
    shutil.copy(ROOT / "docs" / "rules.md", out)
    assert run(capsys, "rules", "docs", "--output", str(out))[0] == 0
    assert (ROOT / "docs" / "rules.md").read_text() == out.read_text(), (
        "docs/rules.md is stale: run `approver rules docs`")


def decide_samples(client, sandbox, work):
    ids = []
    for email in (ALICE, BOB, CAROL):
        request = sandbox.app.sandbox.create_key_request(email, [FREE], {"use_case": "x"})
        client.post(f"/hooks/tyk/{WEBHOOK_TOKEN}",
                    json={"event": "key_request_event.submitted", "data": request})
        ids.append(request["id"])
    work()
    return ids


def test_decisions_list_show_and_export(capsys, client, sandbox, work, rt, tmp_path):
    alice, bob, carol = decide_samples(client, sandbox, work)
    _code, out, _ = run(capsys, "decisions", "list", "--json")
    entries = [json.loads(line) for line in out.splitlines()]
    assert {(e["request_id"], e["outcome"]) for e in entries if e["event"] == "decided"} == {
        (alice, "approve"), (bob, "deny"), (carol, "review")}
    _, out, _ = run(capsys, "decisions", "list")
    assert out.splitlines()[0].split() == ["WHEN", "EVENT", "REQUEST", "OUTCOME", "DEVELOPER",
                                           "BY", "WHY"]
    [line] = [x for x in out.splitlines() if bob in x and " decided " in x]
    assert "bob@mailinator.com" in line and "rule=deny-disposable-email" in line
    _, out, _ = run(capsys, "decisions", "show", bob)
    assert f"key request {bob} (classic portal): applied, deny by deny-disposable-email" in out
    assert "developer: bob@mailinator.com · Bob Burner" in out
    assert "✓ rule deny-disposable-email: matched" in out
    _, out, _ = run(capsys, "decisions", "show", bob, "--json")
    shown = json.loads(out)
    assert shown["state"]["outcome"] == "deny"
    assert [h["event"] for h in shown["history"]] == ["decided", "applied"]
    assert run(capsys, "decisions", "show", "nope")[0] == 1
    export = tmp_path / "log.jsonl"
    assert run(capsys, "decisions", "export", "--output", str(export))[0] == 0
    lines = [json.loads(line) for line in export.read_text().splitlines()]
    assert len(lines) == 5 and lines[0]["event"] == "decided"  # oldest first


def test_rules_backtest_shows_what_would_change(capsys, client, sandbox, work, tmp_path):
    decide_samples(client, sandbox, work)
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text("version: 1\ndefault: review\nrules:\n  - id: gmail-ok\n    when:\n"
                         "      developer.email_domain: gmail.com\n    then: approve\n")
    code, out, _ = run(capsys, "rules", "backtest", str(candidate))
    assert code == 0
    assert ("3 recorded decisions: 3 replayed, 3 would change outcome, 0 would keep it by "
            "another rule, 0 not comparable") in out
    assert "review -> approve  1" in out
    assert "(free-mail-to-review) -> approve (gmail-ok)" in out


def test_failed_job_is_listed_and_replayed(capsys, settings, sandbox, rt, work):
    tyk = sandbox.app.sandbox
    tyk.add_fault("PUT", "/api/portal/requests/approve/", status=500, times=10)
    request = tyk.create_key_request(ALICE, [FREE], {"use_case": "x"})
    client = create_app(settings.with_(retry_delays=())).test_client()  # fail at once
    client.post(f"/hooks/tyk/{WEBHOOK_TOKEN}",
                json={"event": "key_request_event.submitted", "data": request})
    work()
    assert rt.store.state(request["id"])["state"] == st.FAILED
    _code, out, _ = run(capsys, "decisions", "list", "--failed", "--json")
    failed = [json.loads(line) for line in out.splitlines()]
    assert [f["request_id"] for f in failed] == [request["id"]]
    assert "500" in failed[0]["error"]
    tyk.clear_faults()
    assert run(capsys, "replay", request["id"])[0] == 0
    work()
    assert rt.store.state(request["id"])["state"] == st.APPLIED
    assert tyk.get_key_request(request["id"])["approved"] is True


def test_shadow_mode_records_and_applies_nothing(client, sandbox, rt, work):
    rt.settings = rt.settings.with_(mode="shadow")
    alice, bob, _ = decide_samples(client, sandbox, work)
    assert rt.store.state(alice)["state"] == st.SHADOWED
    assert rt.store.state(alice)["outcome"] == "approve"
    assert rt.store.state(bob)["outcome"] == "deny"
    assert sandbox.app.sandbox.calls(method="PUT") == []
    assert sandbox.app.sandbox.calls(method="DELETE") == []


@pytest.mark.parametrize("argv", [["rules"], ["decisions"], ["nope"]])
def test_incomplete_commands_exit_with_usage(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2


def test_status_shows_queues_rules_dashboard_and_last_decisions(capsys, client, sandbox, work):
    decide_samples(client, sandbox, work)
    code, out, _ = run(capsys, "status", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["queue"]["queued"] == 0 and report["queue"]["failed"] == 0
    assert report["dashboard"] == "ok"
    assert report["rules"]["revision"] and report["rules"]["error"] is None
    assert [d["outcome"] for d in report["last_decisions"]] == ["review", "deny", "approve"]
    code, out, _ = run(capsys, "status")
    assert "queue approver: 0 queued" in out and "dashboard: ok" in out


def test_decisions_verify_finds_the_first_tampered_entry(capsys, client, sandbox, work, rt):
    decide_samples(client, sandbox, work)
    code, out, _ = run(capsys, "decisions", "verify")
    assert (code, out.strip()) == (0, "ok: 5 entries, chain intact")
    entries = rt.redis.xrange("approver:log")
    position, (victim_id, victim) = next(
        (i, e) for i, e in enumerate(entries)
        if json.loads(unpack(e[1][b"json"])).get("outcome") == "deny")
    body = json.loads(unpack(victim[b"json"]))
    body["outcome"] = "approve"  # someone rewrites a deny as an approve
    # Streams cannot be edited in place: rebuild the log with the altered entry.
    rt.redis.delete("approver:log")
    for entry_id, data in entries:
        if entry_id == victim_id:
            data = {**data, b"json": json.dumps(body, sort_keys=True).encode()}
        rt.redis.xadd("approver:log", data, id=entry_id)
    code, out, _ = run(capsys, "decisions", "verify")
    assert code == 1
    assert f"entry {victim_id.decode()}: its content does not match its hash" in out
    assert f"after {position} good entries" in out


def as_written_before_packing(redis) -> None:
    """Rewrite the log and the request records as the version before approver.state.packed
    wrote them: each entry's JSON text and each record's JSON fields stored as they are."""
    entries = redis.xrange("approver:log")
    assert all(data[b"json"].startswith(MARK) for _, data in entries if len(data[b"json"]) > 64)
    redis.delete("approver:log")
    for entry_id, data in entries:
        redis.xadd("approver:log", {**data, b"json": unpack(data[b"json"]).encode()}, id=entry_id)
    for key in redis.scan_iter("approver:request:*"):
        for field, value in redis.hgetall(key).items():
            if value.startswith(MARK):
                redis.hset(key, field, unpack(value))


def test_a_log_and_records_written_before_packing_still_verify_and_read(
        capsys, client, sandbox, work, rt, tmp_path):
    _alice, bob, carol = decide_samples(client, sandbox, work)
    as_written_before_packing(rt.redis)
    assert json.loads(rt.redis.xrange("approver:log", count=1)[0][1][b"json"])["event"]
    assert run(capsys, "decisions", "verify")[1].strip() == "ok: 5 entries, chain intact"
    _, out, _ = run(capsys, "decisions", "show", bob, "--json")
    shown = json.loads(out)
    assert shown["state"]["facts"]["developer.email_domain"] == "mailinator.com"
    assert shown["state"]["trace"][0]["rule"] == "deny-disposable-email"
    assert [h["event"] for h in shown["history"]] == ["decided", "applied"]
    code, out, _ = run(capsys, "rules", "backtest", str(ROOT / "rules"))
    assert code == 0 and "3 recorded decisions: 3 replayed" in out
    # New, packed entries chain on to the old ones; a record read old is written back new.
    rt.store.save_state(carol, notes={"why": "asked again"})
    rt.store.log("note", carol, by="test")
    assert rt.redis.hget(f"approver:request:{carol}", "trace").startswith(b"[")  # as it was
    assert rt.store.state(carol)["notes"] == {"why": "asked again"}
    assert run(capsys, "decisions", "verify")[1].strip() == "ok: 6 entries, chain intact"
    export = tmp_path / "log.jsonl"
    assert run(capsys, "decisions", "export", "--output", str(export))[0] == 0
    lines = [json.loads(line) for line in export.read_text().splitlines()]
    assert len(lines) == 6 and lines[0]["event"] == "decided" and lines[-1]["event"] == "note"
    assert run(capsys, "decisions", "verify", "--file", str(export))[0] == 0


def test_decisions_verify_notices_removed_entries(capsys, client, sandbox, work, rt):
    decide_samples(client, sandbox, work)
    last_id = rt.redis.xrevrange("approver:log", count=1)[0][0]
    rt.redis.xdel("approver:log", last_id)
    code, out, _ = run(capsys, "decisions", "verify")
    assert code == 1 and "entries removed" in out


def test_rules_check_shows_what_the_workers_run(capsys, rt, tmp_path, monkeypatch):
    from approver.pipeline import health, runtime

    monkeypatch.setenv("APPROVER_REDIS_URL", rt.settings.redis_url)
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    live = runtime.Runtime(rt.settings.with_(rules_path=rules))
    live.rules.check_interval = 0
    health.publish_health(live)
    (rules / "30-trust.yaml").write_text("version: 1\nrules:\n  - id: [broken\n")
    live.rules.current()  # the worker notices the bad edit and keeps the last good rules
    health.publish_health(live)
    code, out, _ = run(capsys, "rules", "check", str(rules))
    assert code == 1
    assert "30-trust.yaml:" in out
    assert "workers run revision" in out and "1 edits failed to load" in out
    assert "the previous rules stay in force" in out


HOSTILE = "\x1b[2J\x1b[1;1Hall clear\n2024-01-01T00:00:00Z  applied  forged\u202e"


def test_data_reaches_the_terminal_escaped_on_one_line(capsys, rt, sandbox):
    rt.store.log("decided", "64b00000000000000000ffff", outcome="review", rule="r",
                 reason=HOSTILE)
    for argv in (["decisions", "list"], ["status"]):
        code, out, _ = run(capsys, *argv)
        assert code == 0
        line = next(line for line in out.splitlines() if "all clear" in line)
        assert "\\x1b[2J\\x1b[1;1Hall clear\\n2024-01-01T00:00:00Z  applied  forged\\u202e" in line
        assert not any(c in out for c in "\x1b\u202e"), argv
        assert "forged" not in out.replace(line, "")


def test_a_reader_that_stops_reading_ends_the_command_quietly(env, rt):
    pipe = rt.redis.pipeline()
    for n in range(3000):  # more than a pipe holds
        pipe.xadd("approver:log", {"json": json.dumps({"event": "decided", "n": n})})
    pipe.execute()
    proc = subprocess.Popen([sys.executable, "-m", "approver", "decisions", "list",
                             "--limit", "5000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()  # `| head -1`
    with proc.stderr:
        assert proc.wait(30) == 141
        assert proc.stderr.read() == b""


def test_rules_docs_outside_a_clone_says_where_to_write(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no docs/ folder here
    code, out, err = run(capsys, "rules", "docs")
    assert code == 2 and out == ""
    assert "cannot write docs/rules.md" in err and "--output" in err


def test_status_with_broken_rules_shows_everything_else_too(capsys, rt, tmp_path):
    (tmp_path / "broken.yaml").write_text("version: 1\nrules:\n  - id: [broken\n")
    rt.settings = rt.settings.with_(rules_path=tmp_path)
    code, out, _ = run(capsys, "status")
    assert code == 0
    assert "queue approver: 0 queued" in out and "dashboard: ok" in out
    assert "PROBLEM: " in out and "broken.yaml:" in out


def test_redis_unreachable_is_one_clear_line(capsys, monkeypatch):
    from approver.pipeline import runtime
    from approver.process.embedded_redis import free_port

    monkeypatch.setenv("APPROVER_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    runtime.install(None)
    try:
        code, _, err = run(capsys, "decisions", "list")
    finally:
        runtime.install(None)
    assert code == 2 and "Traceback" not in err
    assert err.startswith("approver: Redis (redis://") and err.count("\n") == 1
    assert "ConnectionError" in err
