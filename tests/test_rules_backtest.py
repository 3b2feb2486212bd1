"""`approver rules backtest`: decisions replayed on every fact the service had."""

import json

from approver.pipeline import backtest, decide
from approver.rules import Facts, evaluate, load_rules
from tests.conftest import ROOT, WEBHOOK_TOKEN

FREE, PRO = "64b0000000000000000000b1", "64b0000000000000000000b2"
SAMPLES = [  # email, policy, form fields
    ("alice@acme.partner.example", FREE, {"use_case": "x"}),
    ("bob@mailinator.com", FREE, {"use_case": "x"}),
    ("carol@gmail.com", FREE, {"use_case": "x"}),
    ("dave@example.com", PRO, {"use_case": "reports"}),  # paid, no billing: waits
    ("erin@corp.example", FREE, {"use_case": "ops", "company": "ACME Corp"}),
]


def decide_samples(client, sandbox, work, before=lambda request_id: None):
    """Submit SAMPLES through the webhook, call `before(id)` on each, then decide them all."""
    ids = []
    for email, policy, fields in SAMPLES:
        request = sandbox.app.sandbox.create_key_request(email, [policy], fields)
        before(request["id"])
        client.post(f"/hooks/tyk/{WEBHOOK_TOKEN}",
                    json={"event": "key_request_event.submitted", "data": request})
        ids.append(request["id"])
    work()
    return ids


def decided(rt, request_id):
    return next(e for e in rt.store.entries(100)
                if e.get("event") == "decided" and e["request_id"] == request_id)


def test_the_backtest_of_the_shipped_rules_agrees_with_explain(client, sandbox, work, rt):
    shipped = load_rules(ROOT / "rules")
    explained = {}

    def explain(request_id):  # what `rules explain --request` decides, before the worker does
        facts = Facts(decide.gather(rt, decide.fetch(rt, request_id)))
        decision = evaluate(shipped, facts)
        explained[request_id] = (decision.outcome, decision.rule_id)

    ids = decide_samples(client, sandbox, work, explain)
    assert [explained[i][0] for i in ids] == ["approve", "deny", "review", "wait", "approve"]
    for request_id in ids:
        entry = decided(rt, request_id)
        assert (entry["outcome"], entry["rule"] or None) == explained[request_id]
    result = backtest.run(rt.store, shipped)
    assert (result.total, result.changed, result.moved, result.not_comparable) == (5, [], [], [])
    assert result.transitions == {("approve", "approve"): 2, ("deny", "deny"): 1,
                                  ("review", "review"): 1, ("wait", "wait"): 1}


def test_each_decision_records_every_fact_the_rules_could_read(client, sandbox, work, rt):
    alice = decide_samples(client, sandbox, work)[0]
    facts = decided(rt, alice)["facts"]
    # Read by no shipped rule, still recorded: a candidate rule may read them.
    assert facts["developer.fields"] == {"Name": "Alice Archer", "company": "Acme Inc"}
    assert facts["request.fields"] == {"use_case": "x"}
    assert facts["developer.key_count"] == 0 and facts["billing.status"] is None
    assert facts["request.created_at"].endswith("Z") or "+" in facts["request.created_at"]
    assert "RawKey" not in json.dumps(facts)


def test_a_candidate_reading_a_field_the_request_lacked_is_still_comparable(
        client, sandbox, work, rt, tmp_path):
    decide_samples(client, sandbox, work)
    candidate = tmp_path / "c.yaml"
    candidate.write_text(
        "version: 1\nrules:\n  - id: big\n    when:\n"
        "      developer.fields.size: {exists: true}\n    then: deny\n")
    result = backtest.run(rt.store, load_rules(candidate))
    assert result.not_comparable == [] and result.total == 5


def test_a_decision_recorded_without_a_fact_the_candidate_reads_is_not_comparable(
        client, sandbox, work, rt, tmp_path):
    alice = decide_samples(client, sandbox, work)[0]
    # A decision recorded the old way: only the facts its trace touched.
    entry = decided(rt, alice)
    old = {**entry, "facts": {"developer.email_domain": "acme.partner.example",
                              "developer.inactive": False}}
    rt.store.log("decided", alice, **{k: v for k, v in old.items()
                                      if k not in ("event", "request_id", "at", "ts")})
    candidate = tmp_path / "c.yaml"
    candidate.write_text(
        "version: 1\nrules:\n  - id: company\n    when:\n"
        "      developer.fields.company: {exists: true}\n    then: approve\n")
    result = backtest.run(rt.store, load_rules(candidate))
    assert [c["request_id"] for c in result.not_comparable] == [alice]
    assert "developer.fields.company" in result.not_comparable[0]["why"]
    assert result.total == 4
    text = result.render(20)
    assert text.splitlines()[0] == (
        f"5 recorded decisions: 4 replayed, {len(result.changed)} would change outcome, "
        f"{len(result.moved)} would keep it by another rule, 1 not comparable")
    assert f"not comparable (1):\n  {alice}: recorded without developer.fields.company" in text


def test_the_backtest_compares_the_candidate_rules_with_what_people_decided(
        rt, sandbox, tmp_path, capsys):
    from approver import cli
    from tests.test_review import by_person, in_review

    approved = in_review(rt, sandbox)  # carol@gmail.com: free mail, to review
    by_person(rt, approved, "approve", "known customer")
    denied = in_review(rt, sandbox, "dave@example.com", fields={"company": "Dave Ltd"})
    by_person(rt, denied, "deny", "no use case", by="bob")
    # A candidate that approves free mail and everyone else on the free tier.
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text("version: 1\ndefault: review\nrules:\n"
                         "  - id: free-for-all\n    when: {policy.tags: {contains: free}}\n"
                         "    then: approve\n  - id: gmail-only\n"
                         "    when: {developer.email_domain: gmail.com}\n    then: approve\n")
    result = backtest.run(rt.store, load_rules(candidate))
    assert result.people == {("approve", "approve"): 1, ("deny", "approve"): 1}
    [wrong] = result.disagreements
    assert (wrong["request_id"], wrong["developer_email"], wrong["decided_by"],
            wrong["candidate"], wrong["candidate_rule"]) == (
        denied, "dave@example.com", "bob", "approve", "free-for-all")
    assert cli.main(["rules", "backtest", str(candidate)]) == 0
    out = capsys.readouterr().out
    assert ("people decided 2 requests: the candidate rules would have approved 1 of the 1 "
            "requests people approved, and approved 1 they denied:") in out
    assert f"{denied} dave@example.com: deny by bob, the candidate rules approve " \
        "(free-for-all: Matched rule free-for-all.)" in out
    assert cli.main(["rules", "backtest", str(candidate), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["disagreements"][0]["developer_email"] == "dave@example.com"
    # A fact the candidate cannot know is named as the cause.
    strict = tmp_path / "strict.yaml"
    strict.write_text("version: 1\ndefault: deny\nrules:\n  - id: big-companies\n"
                      "    when: {developer.fields.company size: {as: number, gt: 10}}\n"
                      "    then: approve\n")
    [unknown] = backtest.run(rt.store, load_rules(strict)).disagreements
    assert unknown["request_id"] == approved and unknown["candidate"] == "review"
    assert "developer.fields.company size is unknown" in unknown["cause"]
