"""gunicorn settings for `approver web` (deploy/gunicorn.conf.py builds on these)."""

import multiprocessing
import os

from gunicorn.glogging import Logger

from approver.logs import RedactingFilter, redact


class RedactingLogger(Logger):
    """gunicorn's logger with webhook tokens redacted from access and error lines."""

    def atoms(self, resp, req, environ, request_time):
        return {k: redact(v) if isinstance(v, str) else v
                for k, v in super().atoms(resp, req, environ, request_time).items()}

    def setup(self, cfg):
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.addFilter(RedactingFilter())


bind = os.environ.get("APPROVER_BIND", "127.0.0.1:8000")
# Sync workers: each connection is closed after its answer, so load spreads evenly over the
# processes (gthread piled keep-alive clients onto one process in our measurements).
worker_class = "sync"
workers = int(os.environ.get("APPROVER_WEB_WORKERS", 0)) or min(
    2 * multiprocessing.cpu_count() + 1, 8
)
timeout = 30
graceful_timeout = 20
keepalive = 2
logger_class = RedactingLogger
accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
# gunicorn >= 25.1 opens a control socket under ~/.gunicorn by default: not needed here.
control_socket_disable = True
