"""Logging: JSON lines (or readable lines at a terminal), context ids, secrets redacted."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from contextlib import contextmanager
from datetime import UTC, datetime

# A Tyk webhook token rides in the path (the classic Dashboard cannot send headers), and
# other tokens in headers: none of them may reach a log line. Paths are redacted by route:
# everything after /hooks/ (and /status/) goes, however the path is spelled (any case,
# doubled, encoded or dotted slashes), keeping only which hook it was, up to a space, a
# quote or a backslash (so that a line already escaped for JSON stays valid JSON).
# HTTP authentication schemes (IANA's registry, and Token as some APIs spell it).
_SCHEMES = ("basic|bearer|digest|dpop|gnap|hoba|mutual|negotiate|ntlm|oauth|privatetoken"
            "|scram-sha-1|scram-sha-256|vapid|concealed|aws4-hmac-sha256|token")
_PATTERNS = (
    # (the words, one of which each match contains, any case; the pattern; its replacement)
    (("/hooks",), re.compile(r"(?i)(/hooks(?:/|%2f)+(?:(?:tyk|portal)(?:/|%2f)+)?)"
                             r"(?!(?:tyk|portal)(?:[\s?\"'#\\]|$))[^\s?\"'#\\]+"),
     r"\1[redacted]"),
    (("/status",), re.compile(r"(?i)(/status(?:/|%2f)+)[^\s?\"'#\\]+"), r"\1[redacted]"),
    # A mail's action link: its token is the path's last part (also inside a ?next=).
    (("act/", "act%2f"), re.compile(r"(?i)((?:/|%2f)act(?:/|%2f)+)[^\s?&\"'#\\]+"),
     r"\1[redacted]"),
    # A header's value may start with its scheme (RFC 9110 §11.4), kept: the credential
    # is what follows; the header may be quoted, as in a Python dict's repr.
    (("bearer", "authorization", "x-approver-token"),
     re.compile(r"(?i)\b(bearer|(?:authorization|x-approver-token)[\"']?:?)(\s+[\"']?)"
                rf"((?:{_SCHEMES})\s+)?[^\s\"',]+"), r"\1\2\3[redacted]"),
    (("rawkey", "password", "secret"),
     re.compile(r"(?i)([\"']?(?:rawkey|password|secret)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"),
     r"\1[redacted]"),
)
# And by value: the configured secrets themselves, wherever they appear (redact_values).
SHORTEST_SECRET = 8
_values: set[str] = set()
_known: re.Pattern | None = None

# Ids that every line logged while handling one thing carries.
CONTEXT = ("request_id", "key_request_id", "decision_id")
_context: dict[str, contextvars.ContextVar] = {
    name: contextvars.ContextVar(name, default=None) for name in CONTEXT
}


# Every pattern above needs one of its words: text without any of them is returned as it
# is after one search instead of five substitutions. In ASCII text (nearly every line)
# `(?i)` means ASCII case, so each pattern runs only if one of its own words is in the
# lowered text (a substitution never makes another pattern's word: "[redacted]" holds
# none, and each word is all letters, digits, "/", "-" and "%"); other text is searched
# with re's own case rules.
_TRIGGER = re.compile("(?i)" + "|".join(re.escape(w) for words, _, _ in _PATTERNS
                                         for w in words))


def redact_values(values) -> None:
    """Redact these secret values (of at least SHORTEST_SECRET characters) from every line."""
    global _known
    _values.update(v for v in values if v and len(v) >= SHORTEST_SECRET)
    if _values:
        # Longest first, so that a secret containing another is replaced whole.
        _known = re.compile("|".join(map(re.escape, sorted(_values, key=len, reverse=True))))


def redact(text: str) -> str:
    """The text with webhook tokens, bearer tokens, configured secrets and key material replaced."""
    if _known is not None:
        text = _known.sub("[redacted]", text)
    if text.isascii():
        lowered = text.lower()
        for words, pattern, replacement in _PATTERNS:
            if any(w in lowered for w in words):
                text = pattern.sub(replacement, text)
        return text
    if _TRIGGER.search(text) is None:
        return text
    for _, pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def bind(**ids) -> None:
    """Attach ids (request_id, key_request_id, decision_id) to the lines logged from now on."""
    for name, value in ids.items():
        _context[name].set(value)


@contextmanager
def bound(**ids):
    """Attach ids for the duration of a block."""
    tokens = {name: _context[name].set(value) for name, value in ids.items()}
    try:
        yield
    finally:
        for name, token in tokens.items():
            _context[name].reset(token)


class ContextFilter(logging.Filter):
    """Redacts secrets and copies the bound ids onto each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        for name, var in _context.items():
            if not hasattr(record, name):
                setattr(record, name, var.get())
        return True



class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,
        }
        for name in CONTEXT:
            value = getattr(record, name, None)
            if value:
                entry[name] = value
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """Readable lines for a terminal, ids appended."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = " ".join(f"{n}={getattr(record, n)}" for n in CONTEXT if getattr(record, n, None))
        return f"{line}  [{ids}]" if ids else line


class StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time of each line (it may be replaced)."""

    def __init__(self):
        super().__init__()

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def setup(level: str | int = "INFO", json_lines: bool | None = None) -> None:
    """Log to stderr: JSON lines unless stderr is a terminal; secrets redacted."""
    if json_lines is None:
        json_lines = not sys.stderr.isatty()
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    handler.addFilter(ContextFilter())
    handler.approver = True
    root = logging.getLogger()
    # Replace only our own handler, so a second call (or a test's capture) is left intact.
    root.handlers[:] = [h for h in root.handlers if not getattr(h, "approver", False)]
    root.addHandler(handler)
    root.setLevel(level)
