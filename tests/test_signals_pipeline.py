"""Signals end to end: a key request in the sandbox, decided by the shipped rules with facts
from a real DNS server (dnslib over UDP) and RDAP server (HTTP) on 127.0.0.1, a real Redis,
and `approver data update` run as a command."""

import os
import socket
import subprocess
import sys

import pytest

from approver import state as st
from approver.pipeline import runtime
from tests.conftest import WEBHOOK_TOKEN, wait_for

FREE = "64b0000000000000000000b1"


def ask(sandbox, email, fields=None):
    """A developer signs up (if new) and asks for the free tier, saying what for."""
    tyk = sandbox.app.sandbox
    if tyk.developer(email) is None:
        tyk.create_developer({"email": email, "inactive": False})
    return tyk.create_key_request(email, [FREE], fields or {"use_case": "reporting"})


def decide(client, work, rt, sandbox, email):
    """Ask, let Tyk's webhook in, run the worker: the request's record."""
    request = ask(sandbox, email)
    body = {"event": "key_request_event.submitted", "data": request}
    assert client.post(f"/hooks/tyk/{WEBHOOK_TOKEN}", json=body).status_code == 202
    work()
    return rt.store.state(request["id"])


def condition(record, fact):
    """The trace's entry for the first condition on `fact`."""
    stack = [c for entry in record["trace"] for c in entry["conditions"]]
    while stack:
        entry = stack.pop(0)
        if entry.get("fact") == fact:
            return entry
        stack[:0] = entry.get("all") or entry.get("any") or ([entry["not"]] if "not" in entry
                                                             else [])
    raise AssertionError(f"{fact} not in the trace")


def test_a_domain_without_mx_or_address_is_denied_saying_what_dns_answered(
        client, work, rt, sandbox):
    record = decide(client, work, rt, sandbox, "max@nomx.example")
    assert (record["state"], record["outcome"], record["rule"]) == (
        st.APPLIED, "deny", "deny-domain-without-mail")
    assert condition(record, "developer.email_domain_accepts_mail")["source"] == (
        "DNS: nomx.example has no MX, A or AAAA record")
    assert record["facts"]["developer.email_domain_accepts_mail"] is False


def test_a_null_mx_is_denied(client, work, rt, sandbox):
    record = decide(client, work, rt, sandbox, "max@nullmx.example")
    assert (record["outcome"], record["rule"]) == ("deny", "deny-domain-without-mail")
    assert "null MX (RFC 7505)" in condition(record, "developer.email_domain_accepts_mail")[
        "source"]


def test_an_a_record_alone_takes_mail(client, work, rt, sandbox):
    record = decide(client, work, rt, sandbox, "ann@afallback.example")
    assert (record["outcome"], record["rule"]) == ("approve", "free-tier-for-company-addresses")
    assert "A record takes mail" in condition(
        record, "developer.email_domain_accepts_mail")["source"]


def test_a_domain_registered_five_days_ago_goes_to_review(client, work, rt, sandbox,
                                                          signal_servers):
    record = decide(client, work, rt, sandbox, "nia@young.example")
    assert (record["state"], record["outcome"], record["rule"]) == (
        st.IN_REVIEW, "review", "young-domain-to-review")
    assert record["reason"] == "young.example was registered 5 days ago: a human decides."
    entry = condition(record, "developer.email_domain_age_days")
    assert entry["actual"] == 5
    assert entry["source"].startswith(f"RDAP 127.0.0.1:{signal_servers.http.server_port}: "
                                      "young.example registered ")


def test_a_disposable_domain_from_the_installed_list_is_denied_naming_the_list(
        client, work, rt, sandbox):
    record = decide(client, work, rt, sandbox, "bob@mailinator.com")
    assert (record["outcome"], record["rule"]) == ("deny", "deny-disposable-email")
    source = condition(record, "developer.email_disposable")["source"]
    assert source.startswith("disposable-email-domains ") and "installed" in source
    assert source.endswith(": mailinator.com")


def test_a_disposable_domain_loaded_by_data_update_is_denied_naming_the_loaded_list(
        client, work, rt, sandbox, env, tmp_path):
    newer = tmp_path / "disposable.txt"
    newer.write_text("# this week's list\nmailinator.com\nfresh-burner.example\n")
    before = decide(client, work, rt, sandbox, "zed@fresh-burner.example")
    assert (before["outcome"], before["rule"]) == ("approve", "free-tier-for-company-addresses")
    done = subprocess.run([sys.executable, "-m", "approver", "data", "update", "disposable",
                           "--from", str(newer)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "disposable: 2 domains from" in done.stdout
    record = decide(client, work, rt, sandbox, "zoe@fresh-burner.example")
    assert (record["outcome"], record["rule"]) == ("deny", "deny-disposable-email")
    source = condition(record, "developer.email_disposable")["source"]
    assert source.startswith(f"disposable list loaded from {newer}")
    assert source.endswith(": fresh-burner.example")


def test_data_update_refuses_a_list_with_lines_that_are_not_domains(env, rt, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("mailinator.com\nnot a domain\n")
    done = subprocess.run([sys.executable, "-m", "approver", "data", "update", "disposable",
                           "--from", str(bad)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"{bad}:2: 'not a domain' is not a domain name" in done.stdout
    assert rt.redis.exists("approver:signals:list:disposable") == 0


def test_an_admins_allow_list_beside_the_rules_wins_over_the_dataset(
        client, work, sandbox, settings, tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    for path in (settings.rules_path).glob("*.yaml"):
        (rules / path.name).write_text(path.read_text())
    (rules / "lists").mkdir()
    (rules / "lists" / "disposable-allow.txt").write_text("# ours\nmailinator.com\n")
    rt = runtime.Runtime(settings.with_(rules_path=rules))
    runtime.install(rt)
    try:
        record = decide(client, work, rt, sandbox, "bob@mailinator.com")
    finally:
        runtime.install(None)
    entry = condition(record, "developer.email_disposable")
    assert entry["actual"] is False
    assert entry["source"].startswith("lists/disposable-allow.txt (edited ")


def test_the_tenth_request_from_one_domain_goes_to_review(client, work, rt, sandbox):
    ids = [ask(sandbox, f"dev{i}@busy.example")["id"] for i in range(10)]
    outcomes = []
    for request_id in ids:  # one after another, as they came in
        body = {"event": "key_request_event.submitted",
                "data": sandbox.app.sandbox.get_key_request(request_id)}
        assert client.post(f"/hooks/tyk/{WEBHOOK_TOKEN}", json=body).status_code == 202
        work()
        record = rt.store.state(request_id)
        outcomes.append((record["outcome"], record["rule"]))
    assert outcomes == [("approve", "free-tier-for-company-addresses")] * 9 + [
        ("review", "burst-to-review")]
    last = rt.store.state(ids[-1])
    assert condition(last, "history.requests_from_domain_24h")["actual"] == 10
    assert condition(last, "history.requests_from_domain_24h")["source"] == (
        "this service's decisions (Redis)")


def test_a_developer_denied_before_who_asks_again_with_an_alias_goes_to_review(
        client, work, rt, sandbox):
    first = decide(client, work, rt, sandbox, "max@nomx.example")
    assert first["outcome"] == "deny"
    again = decide(client, work, rt, sandbox, "Max+again@nomx.example")
    assert (again["outcome"], again["rule"]) == ("review", "previously-denied-to-review")
    assert again["reason"] == ("max@nomx.example was denied or had a key revoked before: "
                               "a human decides.")
    assert condition(again, "history.previously_denied")["actual"] is True


def test_dns_answers_are_cached_for_their_ttl(client, work, rt, sandbox, signal_servers):
    decide(client, work, rt, sandbox, "ann@afallback.example")
    asked = list(signal_servers.faults.queries)
    record = decide(client, work, rt, sandbox, "amy@afallback.example")
    assert signal_servers.faults.queries == asked  # no new question
    assert "A record takes mail" in condition(
        record, "developer.email_domain_accepts_mail")["source"]
    assert 0 < rt.redis.ttl("approver:signals:cache:mx:afallback.example") <= 600


@pytest.mark.parametrize("fault, fact, cause", [
    ("dns", "developer.email_domain_accepts_mail", "DNS: example.com has a null MX beside"),
    ("rdap", "developer.email_domain_age_days", "answered something not JSON"),
])
def test_nonsense_from_dns_or_rdap_is_unknown_and_goes_to_review(
        client, work, rt, sandbox, signal_servers, fault, fact, cause):
    setattr(signal_servers.faults, fault, "nonsense")
    record = decide(client, work, rt, sandbox, "grace@example.com")
    assert record["outcome"] == "review"
    assert cause in condition(record, fact)["note"]
    assert record["facts"][fact] is None


def _closed_port(kind) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dns_and_rdap_stopped_send_the_request_to_review_in_a_worker_process(
        client, sandbox, rt, env, tmp_path):
    """A real `approver worker` whose DNS and RDAP servers do not answer at all."""
    dead = {**os.environ,
            "APPROVER_DNS_SERVERS": f"127.0.0.1:{_closed_port(socket.SOCK_DGRAM)}",
            "APPROVER_RDAP_URL": f"http://127.0.0.1:{_closed_port(socket.SOCK_STREAM)}/rdap",
            "APPROVER_SIGNALS_TIMEOUT": "1"}
    with (tmp_path / "worker.log").open("w") as log:
        worker = subprocess.Popen([sys.executable, "-m", "approver", "worker"], env=dead,
                                  stdout=log, stderr=subprocess.STDOUT)
        try:
            request = ask(sandbox, "grace@example.com")
            body = {"event": "key_request_event.submitted", "data": request}
            assert client.post(f"/hooks/tyk/{WEBHOOK_TOKEN}", json=body).status_code == 202
            record = wait_for(lambda: (rt.store.state(request["id"]) or {}).get("outcome")
                              and rt.store.state(request["id"]))
        finally:
            worker.terminate()
            worker.wait(15)
    assert (record["state"], record["outcome"], record["rule"]) == (
        st.IN_REVIEW, "review", "deny-domain-without-mail")
    note = condition(record, "developer.email_domain_accepts_mail")["note"]
    assert note.startswith("DNS: "), note
    assert record["facts"]["developer.email_domain_age_days"] is None
    assert sandbox.app.sandbox.get_key_request(request["id"])["approved"] is False


def test_slow_dns_and_rdap_are_unknown_within_the_bound(client, work, sandbox, settings,
                                                        signal_servers):
    signal_servers.faults.dns = signal_servers.faults.rdap = "hang"
    rt = runtime.Runtime(settings.with_(signals_timeout=0.5))
    runtime.install(rt)
    try:
        record = decide(client, work, rt, sandbox, "grace@example.com")
    finally:
        runtime.install(None)
        signal_servers.faults.release.set()
    assert (record["outcome"], record["rule"]) == ("review", "deny-domain-without-mail")
    assert "0.5s" in condition(record, "developer.email_domain_accepts_mail")["note"]
    assert record["facts"]["developer.email_domain_age_days"] is None
    # Nothing unknown is cached: the next decision asks again.
    assert rt.redis.exists("approver:signals:cache:mx:example.com") == 0
