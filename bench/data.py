"""Benchmark data: a sandbox seed with many developers, key-request specs, webhook bodies."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

from approver.sandbox.state import Sandbox as SandboxState

FREE_POLICY = "64b0000000000000000000b1"  # seed.json's "Free" policy, tagged free
EVENT = "key_request_event.submitted"
# One developer per decision, used once between sandbox resets, so that a developer's
# record (which lists every key issued to it) stays the same size all through a run.
DEVELOPERS = 1500  # per outcome


def approve_email(i: int) -> str:
    """Approved by the shipped rules (rule `partners`, rules/30-trust.yaml)."""
    return f"bench-{i}@bench{i}.partner.example"


def deny_email(i: int) -> str:
    """Denied by the shipped rules (rule `deny-disposable-email`, rules/10-block.yaml)."""
    return f"bench-{i}@mailinator.com"


def write_seed(path: Path) -> Path:
    """The sandbox's own seed plus DEVELOPERS approvable and DEVELOPERS deniable developers."""
    seed = json.loads(files("approver.sandbox").joinpath("seed.json").read_text())
    for i in range(DEVELOPERS):
        for kind, email in (("a", approve_email(i)), ("d", deny_email(i))):
            seed["developers"].append({
                "id": f"64be{kind}{i:019x}"[:24].ljust(24, "0"),
                "email": email,
                "date_created": "2026-01-05T09:00:00Z",
                "fields": {"Name": f"Bench {i}", "company": "Bench Ltd"},
            })
    path.write_text(json.dumps(seed))
    return path


def specs(n: int) -> list[tuple[str, str]]:
    """n (developer email, policy id) pairs, alternately approved and denied, no repeats."""
    if n > 2 * DEVELOPERS:
        raise ValueError(f"at most {2 * DEVELOPERS} key requests between sandbox resets")
    return [
        (approve_email(i // 2) if i % 2 == 0 else deny_email(i // 2), FREE_POLICY)
        for i in range(n)
    ]


def webhook_template() -> dict:
    """A genuine key_request_event body, as the sandbox Dashboard would post it (~1.3 KB)."""
    sandbox = SandboxState()
    view = sandbox.create_key_request(
        "alice@acme.partner.example", [FREE_POLICY],
        {"company": "Acme Inc", "use_case": "billing sync"},
    )
    data = {k: v for k, v in view.items() if k != "catalogues"}
    return {"event": EVENT, "data": data}


def webhook_body(request_id: str, template: dict | None = None) -> bytes:
    """The webhook body for one key request id."""
    body = template or webhook_template()
    return json.dumps({**body, "data": {**body["data"], "id": request_id}}).encode()
