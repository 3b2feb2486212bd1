"""gunicorn config for the web tier: `approver web --config deploy/gunicorn.conf.py`.

It starts from the packaged defaults (sync workers from the CPU count, graceful timeouts,
tokens redacted from access and error logs); change what your deployment needs below.
"""

from approver.web.gunicorn_conf import *  # noqa: F403
