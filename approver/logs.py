"""Logging set-up, with secrets redacted from every line."""

from __future__ import annotations

import logging
import re
import sys

# A Tyk webhook token rides in the path (the classic Dashboard cannot send headers), and
# other tokens in headers: none of them may reach a log line.
_PATTERNS = (
    (re.compile(r"(/hooks/(?:tyk|portal)/)[^\s/?\"']+"), r"\1[redacted]"),
    (re.compile(r"(?i)\b(bearer|authorization:?|x-approver-token:?)(\s+)[^\s\"',]+"),
     r"\1\2[redacted]"),
    (re.compile(r"(?i)(\"?(?:rawkey|password|secret)\"?\s*[:=]\s*\"?)[^\s\"',}]+"),
     r"\1[redacted]"),
)


def redact(text: str) -> str:
    """The text with webhook tokens, bearer tokens and key material replaced."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record's message with secrets redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def setup(level: str | int = "INFO") -> None:
    """Send the service's logs to stderr, one line each, secrets redacted."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s")
    )
    handler.addFilter(RedactingFilter())
    handler.approver = True
    root = logging.getLogger()
    # Replace only our own handler, so a second call (or a test's capture) is left intact.
    root.handlers[:] = [h for h in root.handlers if not getattr(h, "approver", False)]
    root.addHandler(handler)
    root.setLevel(level)
