"""The ingest baseline: a bare Flask endpoint answering 202, same route shape as the webhook.

Run under the same gunicorn config and worker count as `approver web` (see bench/procs.py),
so the ratio webhook / bare is the cost of the service's own work per request.
"""

from flask import Flask

app = Flask(__name__)


@app.post("/hooks/tyk/<path:token>")
def hook(token: str):
    return "", 202


@app.get("/healthz")
def healthz():
    return "ok"
