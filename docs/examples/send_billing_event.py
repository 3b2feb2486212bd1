"""Send a signed billing event to tyk-approver, the way a billing provider does.

    pip install requests standardwebhooks
    APPROVER_BILLING_SECRETS=whsec_... python send_billing_event.py \
        https://approver.example.com billing.status 64b0000000000000000000a4 active pro
    python send_billing_event.py URL key_request.decision <key request id> approve "invoice 123"
"""

import json
import sys
import uuid
from datetime import UTC, datetime

import requests
from standardwebhooks.webhooks import Webhook


def main(base_url: str, kind: str, subject: str, value: str, extra: str = "") -> int:
    if kind == "billing.status":
        data = {"developer_id": subject, "status": value, "plan": extra or None,
                "occurred_at": datetime.now(UTC).isoformat().replace("+00:00", "Z")}
    else:
        data = {"key_request_id": subject, "decision": value, "reason": extra}
    body = json.dumps({"type": kind, "data": data})
    msg_id = f"msg_{uuid.uuid4().hex}"  # keep it when you retry: replays are dropped by id
    now = datetime.now(UTC)
    signature = Webhook(_secret()).sign(msg_id, now, body)
    response = requests.post(
        f"{base_url}/billing/events", data=body, timeout=10,
        headers={"content-type": "application/json", "webhook-id": msg_id,
                 "webhook-timestamp": str(int(now.timestamp())),
                 "webhook-signature": signature},
    )
    print(response.status_code, response.text)
    return 0 if response.status_code in (200, 202) else 1


def _secret() -> str:
    import os

    # The service's own setting: comma-separated while rotating; the first one signs.
    return os.environ["APPROVER_BILLING_SECRETS"].split(",")[0].strip()


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:]))
