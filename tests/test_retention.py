"""Retention: the decision log and finished records are bounded by count and age; trimming
keeps `decisions verify` working from the oldest kept entry; exports by time re-verify."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from approver import cli, config
from approver import state as st
from approver.errors import ConfigError
from approver.pipeline import reconcile
from tests.test_cli import ALICE, BOB, CAROL, FREE, decide_samples, run


def log_many(store: st.Store, n: int) -> None:
    for i in range(n):
        store.log("decided", f"r{i}", outcome="review")


def test_retention_settings_are_read_and_checked():
    s = config.from_env({"APPROVER_LOG_MAX_ENTRIES": "5000", "APPROVER_LOG_MAX_AGE": "30d",
                         "APPROVER_RECORD_MAX_ENTRIES": "2000", "APPROVER_RECORD_MAX_AGE": "0"})
    assert st.Retention.of(s) == st.Retention(5000, 30 * 86400, 2000, None)
    assert st.Retention.of(config.from_env({})) == st.Retention(1_000_000, None, 100_000,
                                                                90 * 86400)
    with pytest.raises(ConfigError, match="APPROVER_LOG_MAX_ENTRIES must be at least 1000"):
        config.from_env({"APPROVER_LOG_MAX_ENTRIES": "10"})
    for age in ("-5m", "-1"):  # would trim the whole log and every record
        with pytest.raises(ConfigError, match="APPROVER_LOG_MAX_AGE must be a duration"):
            config.from_env({"APPROVER_LOG_MAX_AGE": age})
        with pytest.raises(ConfigError, match="APPROVER_RECORD_MAX_AGE must be a duration"):
            config.from_env({"APPROVER_RECORD_MAX_AGE": age})


def test_a_log_trimmed_by_count_still_verifies_anchored_at_the_oldest_entry_kept(
        redis_conn, capsys, rt):
    store = st.Store(redis_conn, st.Retention(log_max_entries=100))
    log_many(store, 400)
    kept = redis_conn.xlen(st.LOG_KEY)
    assert 100 <= kept < 400  # MAXLEN ~: trimmed by whole nodes, never below the count
    found = store.verify_log()
    assert (found.checked, found.why) == (kept, None) and found.anchored
    oldest = redis_conn.xrange(st.LOG_KEY, count=1)[0]
    assert found.first == oldest[0].decode() and found.anchor == oldest[1][b"prev"].decode()
    code, out, _ = run(capsys, "decisions", "verify")
    assert code == 0 and out.startswith(f"ok: {kept} entries, chain intact")
    assert f"anchored at the oldest entry kept, {found.first}" in out


def test_the_log_is_trimmed_by_age_when_asked(redis_conn):
    store = st.Store(redis_conn, st.Retention(log_max_age=3600))
    old = int((time.time() - 7200) * 1000)
    for i in range(300):  # entries from two hours ago, then fresh ones, chained
        redis_conn.xadd(st.LOG_KEY, {"json": "{}", "prev": "", "hash": "x"}, id=f"{old}-{i}")
    log_many(store, 5)
    store.trim()
    assert redis_conn.xlen(st.LOG_KEY) < 305
    assert int(redis_conn.xrange(st.LOG_KEY, count=1)[0][0].split(b"-")[0]) >= old


def test_finished_records_are_dropped_oldest_first_by_count_and_by_age(redis_conn):
    store = st.Store(redis_conn, st.Retention(record_max_entries=1000, record_max_age=3600))
    for i in range(1005):
        store.save_state(f"done{i}", state=st.APPLIED, outcome="approve")
    store.save_state("unfinished", state=st.APPLYING, outcome="approve")
    store.save_state("waits", state=st.WAITING, outcome="wait")
    redis_conn.zadd(st.RECORDS_KEY, {"done1004": time.time() - 7200})  # finished long ago
    # 1005 finished, 1000 kept: the oldest five go, done1004 (too old) first among them.
    assert store.trim() == {"log_entries": 0, "records": 5}
    assert store.state("done1004") is None and store.state("done3") is None
    assert store.state("done4")["state"] == st.APPLIED
    assert redis_conn.zcard(st.RECORDS_KEY) == 1000
    redis_conn.zadd(st.RECORDS_KEY, {"done500": time.time() - 7200})
    assert store.trim()["records"] == 1 and store.state("done500") is None
    # Records not finished are out of retention's reach, however many there are.
    assert store.state("unfinished") and store.state("waits")
    # A record decided again leaves the index; a final state puts it back.
    store.save_state("done5", state=st.DECIDED)
    assert redis_conn.zscore(st.RECORDS_KEY, "done5") is None
    store.save_state("done5", state=st.APPLIED)
    assert redis_conn.zscore(st.RECORDS_KEY, "done5") is not None


def test_the_reconciler_pass_applies_retention(rt, sandbox, redis_conn):
    rt.store.retention = st.Retention(record_max_entries=1000)
    for i in range(1010):
        rt.store.save_state(f"old{i}", state=st.SKIPPED)
    assert reconcile.run(rt).trimmed == {"log_entries": 0, "records": 10}


def test_export_by_time_writes_json_lines_that_re_verify(capsys, client, sandbox, work, rt,
                                                       tmp_path):
    decide_samples(client, sandbox, work)
    middle = time.time()
    time.sleep(0.01)
    for email in (ALICE, BOB, CAROL):
        request = sandbox.app.sandbox.create_key_request(email, [FREE], {"use_case": "x"})
        rt.store.log("decided", request["id"], outcome="review")
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(middle - 1))
    whole, first, second = (tmp_path / n for n in ("all.jsonl", "1.jsonl", "2.jsonl"))
    assert run(capsys, "decisions", "export", "--output", str(whole))[0] == 0
    cut = datetime.fromtimestamp(middle, UTC).isoformat(timespec="milliseconds")
    code, _, err = run(capsys, "decisions", "export", "--until", cut, "--output", str(first))
    assert code == 0 and "exported 5 entries, chain verified" in err and "starts the chain" in err
    code, _, err = run(capsys, "decisions", "export", "--since", cut, "--output", str(second))
    assert code == 0 and "exported 3 entries, chain verified" in err and "links to" in err
    lines = [json.loads(line) for line in whole.read_text().splitlines()]
    parts = [json.loads(x) for f in (first, second) for x in f.read_text().splitlines()]
    assert parts == lines and len(lines) == 8  # consecutive exports neither overlap nor gap
    assert {"id", "prev", "hash", "event", "request_id", "at"} <= set(lines[0])
    assert parts[5]["prev"] == parts[4]["hash"]  # the second export chains to the first
    # A stored export can be checked later; an edited one is caught.
    assert run(capsys, "decisions", "verify", "--file", str(second))[0] == 0
    edited = second.read_text().replace('"review"', '"approve"', 1)
    second.write_text(edited)
    code, out, _ = run(capsys, "decisions", "verify", "--file", str(second))
    assert code == 1 and "its content does not match its hash" in out
    assert run(capsys, "decisions", "export", "--since", "yesterday")[0] == 2
    assert run(capsys, "decisions", "export", "--since", since[:10], "--output",
               str(tmp_path / "day.jsonl"))[0] == 0


def test_exported_lines_go_to_stdout_and_are_checked_as_written(capsys, client, sandbox,
                                                               work, rt):
    decide_samples(client, sandbox, work)
    code, out, err = run(capsys, "decisions", "export")
    assert code == 0 and len(out.splitlines()) == 5 and "chain verified" in err
    assert cli.main(["decisions", "verify"]) == 0
