"""gunicorn settings for `approver web` (deploy/gunicorn.conf.py builds on these)."""

import json
import multiprocessing
import os
import re
import sys
import traceback

from gunicorn.glogging import Logger, SafeAtoms

from approver.logs import ContextFilter, JsonFormatter, redact

# Atoms gunicorn computes itself that no client can put a token into: the peer address,
# the time, the status, sizes and durations, the protocol, the pid; and the method, which
# gunicorn 27 accepts only as an HTTP token (no "/", space, ":" or "=": no pattern of
# approver.logs can match it).
_SERVER_ATOMS = frozenset("hltsmHbBTDMLp")
_FORMAT_KEY = re.compile(r"%\(([^)]*)\)")


def _referenced(access_log_format: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(every atom the format names, as gunicorn looks it up; those to redact)."""
    keys = tuple(dict.fromkeys(
        k.lower() if k.startswith("{") else k for k in _FORMAT_KEY.findall(access_log_format)))
    return keys, tuple(k for k in keys if k not in _SERVER_ATOMS)


def _json_text(value: str) -> str:
    """`value` escaped for the inside of a JSON string, in ASCII (no raw line breaks)."""
    return json.dumps(value)[1:-1]


class _EscapedAtoms(SafeAtoms):
    """gunicorn's atom lookup without its own quoting: the values come escaped for JSON."""

    def __init__(self, atoms):
        dict.__init__(self, atoms)


class RedactingLogger(Logger):
    """gunicorn's logger with webhook tokens redacted from access and error lines."""

    _format_keys: tuple[str, tuple[str, ...], tuple[str, ...]] | None = None

    def atoms(self, resp, req, environ, request_time):
        """Every atom, each string redacted (what gunicorn's own `access` would format)."""
        return {k: redact(v) if isinstance(v, str) else v
                for k, v in super().atoms(resp, req, environ, request_time).items()}

    def access(self, resp, req, environ, request_time):
        """gunicorn's `access`, formatting only the atoms the format names.

        Those that a client can fill (request line, path, query, referer, headers, the
        environ) are redacted and escaped for a JSON string, so that a `"`, a `\\` or an
        encoded line break in the path cannot break the line; the rest of the ~40 atoms
        (every header and environ entry) are never looked at. The line is redacted once
        more as a whole by the handlers' ContextFilter.
        """
        if not self.access_log_enabled:
            return
        fmt = self.cfg.access_log_format
        cached = self._format_keys
        if cached is None or cached[0] != fmt:
            cached = self._format_keys = (fmt, *_referenced(fmt))
        _, keys, client = cached
        atoms = super().atoms(resp, req, environ, request_time)
        used = {k: atoms[k] for k in keys if k in atoms}
        for k in client:
            value = used.get(k)
            if isinstance(value, str):
                used[k] = _json_text(redact(value))
        try:
            self.access_log.info(fmt, _EscapedAtoms(used))
        except Exception:
            self.error(traceback.format_exc())

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
# Threads, so that a few slow clients (a header a byte at a time, a body that never ends)
# hold a thread each, not a whole process; DeadlineWorker takes a thread back from a
# connection not served within 10 s. A sync worker read with no limit: two such clients
# kept a two-process tier from answering /healthz for 10 s. Put a buffering proxy in front
# for more than a handful (deploy/README.md).
worker_class = "approver.web.gunicorn_worker.DeadlineWorker"
workers = int(os.environ.get("APPROVER_WEB_WORKERS", 0)) or min(
    2 * multiprocessing.cpu_count() + 1, 8
)
threads = 16
# A process takes no more connections than it has threads: when all of them are busy the
# others accept, so slow clients (or keep-alive ones, which piled onto one process in our
# measurements) cannot queue requests behind them. No keep-alive: each connection is closed
# after its answer, as sync workers did, and a connection silent for 5 s is dropped.
worker_connections = threads
keepalive = 0
timeout = 30
graceful_timeout = 20
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
