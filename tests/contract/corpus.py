"""The contract corpus (`tests/fixtures/tyk/`): what each recorded file answers, and loading it.

`python -m tests.contract.corpus` writes `approver/sandbox/shapes.json` from the corpus
(the sandbox answers in these shapes; `test_sandbox_shapes.py` checks they agree).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from approver.sandbox.shapes import skeleton

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "fixtures" / "tyk"
SHAPES = ROOT / "approver" / "sandbox" / "shapes.json"


@dataclass(frozen=True)
class Answer:
    """One recorded REST answer: the route it answers and the variant (Tyk version) it shows."""

    file: str
    service: str  # "classic" (Dashboard) or "portal" (new Developer Portal)
    route: str
    variant: str

    def body(self):
        return load(self.file)


# Every recorded REST answer, the default variant of each route first.
ANSWERS = [
    Answer("classic/GET-api-portal-requests.portal-keys-page.json", "classic",
           "GET /api/portal/requests", "portal-keys-page"),
    Answer("classic/GET-api-portal-requests.json", "classic",
           "GET /api/portal/requests", "manage-key-requests"),
    Answer("classic/GET-api-portal-requests-id.portal-keys-page.json", "classic",
           "GET /api/portal/requests/{id}", "portal-keys-page"),
    Answer("classic/GET-api-portal-requests-id.json", "classic",
           "GET /api/portal/requests/{id}", "manage-key-requests"),
    Answer("classic/PUT-api-portal-requests-approve.authtoken.json", "classic",
           "PUT /api/portal/requests/approve/{id}", "with-password"),
    Answer("classic/PUT-api-portal-requests-approve.basicauth.json", "classic",
           "PUT /api/portal/requests/approve/{id}", "with-password"),
    Answer("classic/PUT-api-portal-requests-approve.json", "classic",
           "PUT /api/portal/requests/approve/{id}", "raw-key-only"),
    Answer("classic/POST-api-portal-requests.custom-portal-guide.json", "classic",
           "OK", "meta-null"),
    Answer("classic/POST-api-portal-requests.json", "classic", "OK", "meta-string"),
    Answer("classic/DELETE-api-portal-requests-id.json", "classic", "OK", "meta-string"),
    Answer("classic/POST-api-portal-developers.json", "classic", "OK", "meta-null"),
    Answer("classic/PUT-api-portal-developers-id.json", "classic", "OK", "meta-string"),
    Answer("classic/POST-api-portal-policies.json", "classic", "OK", "meta-string"),
    Answer("classic/ERR-401-not-authorised.json", "classic", "Error", "meta-null"),
    Answer("classic/ERR-403-access-denied.json", "classic", "Error", "meta-null"),
    Answer("classic/ERR-404-api-portal-policies-id.json", "classic", "Error", "meta-null"),
    Answer("classic/POST-api-portal-developers-password-id.json", "classic",
           "POST /api/portal/developers/password/{id}", "message"),
    Answer("classic/ERR-POST-api-portal-developers-password-id.json", "classic",
           "Error", "no-meta"),
    Answer("classic/GET-api-portal-developers.json", "classic",
           "GET /api/portal/developers", "portal-developers"),
    Answer("classic/GET-api-portal-developers.2015-legacy.json", "classic",
           "GET /api/portal/developers", "2015-legacy"),
    Answer("classic/GET-api-portal-developers-id.json", "classic",
           "GET /api/portal/developers/{id}", "portal-developers"),
    Answer("classic/GET-api-portal-developers-email.json", "classic",
           "GET /api/portal/developers/email/{email}", "custom-portal-guide"),
    Answer("classic/GET-api-portal-policies.swagger.json", "classic",
           "GET /api/portal/policies", "swagger"),
    Answer("classic/GET-api-portal-policies.json", "classic",
           "GET /api/portal/policies", "portal-policies"),
    Answer("classic/GET-api-portal-policies.tyk-operator.json", "classic",
           "GET /api/portal/policies", "tyk-operator"),
    Answer("classic/GET-api-portal-policies-id.json", "classic",
           "GET /api/portal/policies/{id}", "portal-policies"),
    Answer("classic/GET-api-portal-policies-id.swagger.json", "classic",
           "GET /api/portal/policies/{id}", "swagger"),
    Answer("classic/GET-api-portal-catalogue.json", "classic",
           "GET /api/portal/catalogue", "portal-documentation"),
    Answer("classic/GET-api-portal-catalogue.custom-portal-guide.json", "classic",
           "GET /api/portal/catalogue", "custom-portal-guide"),
    Answer("edp/GET-portal-api-apps.json", "portal", "GET /portal-api/apps", "2023"),
    Answer("edp/GET-portal-api-apps-id-access-requests.json", "portal",
           "GET /portal-api/apps/{id}/access-requests", "2023"),
    Answer("edp/GET-portal-api-apps-id-access-requests-id.json", "portal",
           "GET /portal-api/apps/{id}/access-requests/{id}", "2023"),
    Answer("edp/GET-portal-api-users-id.json", "portal", "GET /portal-api/users/{id}", "2023"),
    Answer("edp/GET-portal-api-organisations-id.json", "portal",
           "GET /portal-api/organisations/{id}", "2023"),
    Answer("edp/GET-portal-api-products-id.json", "portal",
           "GET /portal-api/products/{id}", "2023"),
    Answer("edp/GET-portal-api-providers.json", "portal", "GET /portal-api/providers", "2023"),
]
# Webhook bodies Tyk sends: shapes of what the sandbox fires.
WEBHOOK_SHAPES = [
    Answer("classic/webhook-key_request_event.submitted.json", "classic",
           "webhook key_request_event", "portal-events"),
    Answer("edp/webhook-AccessRequestCreated.json", "portal",
           "webhook AccessRequestCreated", "1.9"),
]


def load(name: str):
    """A corpus file's JSON (for `.http`: the body of the dump)."""
    text = (CORPUS / name).read_text("utf-8")
    if name.endswith(".http"):
        return json.loads(http_dump(name)[2])
    return json.loads(text)


def http_dump(name: str) -> tuple[int, dict[str, str], str]:
    """A raw HTTP response dump: (status, headers by lower-case name, body)."""
    raw = (CORPUS / name).read_bytes().decode("utf-8")
    head, _, body = raw.partition("\r\n\r\n")
    status_line, *lines = head.split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)}
    return int(status_line.split()[1]), headers, body


def files() -> list[str]:
    """Every corpus file, relative to the corpus folder (the README aside)."""
    return sorted(str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*")
                  if p.is_file() and p.name != "README.md")


def shapes() -> dict:
    """{service: {route: {variant: shape}}} from the corpus; variants that disagree fail."""
    found: dict = {}
    for answer in ANSWERS + WEBHOOK_SHAPES:
        shape = skeleton(answer.body())
        variants = found.setdefault(answer.service, {}).setdefault(answer.route, {})
        known = variants.setdefault(answer.variant, shape)
        if answer.route.startswith(("OK", "Error")):
            continue  # envelopes: several samples of one variant, checked by their test
        assert known == shape, f"{answer.file} disagrees with its variant {answer.variant}"
    return found


if __name__ == "__main__":
    SHAPES.write_text(json.dumps(shapes(), indent=1) + "\n", "utf-8")
    print(f"wrote {SHAPES.relative_to(ROOT)}", file=sys.stderr)
