"""gunicorn settings for `approver web` (deploy/gunicorn.conf.py builds on these)."""

import multiprocessing
import os
import sys

from gunicorn.glogging import Logger

from approver.logs import ContextFilter, JsonFormatter, redact


class RedactingLogger(Logger):
    """gunicorn's logger with webhook tokens redacted from access and error lines."""

    def atoms(self, resp, req, environ, request_time):
        return {k: redact(v) if isinstance(v, str) else v
                for k, v in super().atoms(resp, req, environ, request_time).items()}

    def setup(self, cfg):
        super().setup(cfg)
        for handler in self.error_log.handlers:
            if not sys.stderr.isatty():
                handler.setFormatter(JsonFormatter())
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.addFilter(ContextFilter())


def child_exit(server, worker):
    """Let the metrics of a gunicorn worker that exited be merged, not lost."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


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
# One JSON object per line; the path's token is redacted by RedactingLogger.atoms.
access_log_format = (
    '{"ts": "%(t)s", "remote": "%(h)s", "method": "%(m)s", "path": "%(U)s", '
    '"status": %(s)s, "bytes": "%(b)s", "ms": %(M)s, "request_id": "%({x-request-id}o)s"}'
)
# gunicorn >= 25.1 opens a control socket under ~/.gunicorn by default: not needed here.
control_socket_disable = True
