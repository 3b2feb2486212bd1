"""The service's state in Redis, split by what each part owns; `Store` composes them.

`billing`, `accounts` (console accounts and sessions), `ceiling` (the shared call
ceiling) and `connection` (every Redis client is built there) are imported on their own.
"""

from approver.state.common import PREFIX, now_iso
from approver.state.locks import LOCK_TTL, Locked, lock_key
from approver.state.log import (
    LOG_HEAD_KEY,
    LOG_KEY,
    LogCheck,
    chain_hash,
    check_chain,
    export_line,
    read_export,
)
from approver.state.records import (
    APPLIED,
    APPLYING,
    DECIDED,
    DEVELOPER_HISTORY,
    ERROR,
    FAILED,
    FINAL_STATES,
    IN_REVIEW,
    INBOX_KEY,
    INBOX_STATES,
    RECORDS_KEY,
    SETTLED_STATES,
    SHADOWED,
    SKIPPED,
    UNFINISHED_KEY,
    UNFINISHED_STATES,
    WAITING,
    state_key,
)
from approver.state.retention import Retention
from approver.state.store import Store
from approver.state.waits import WAITS_KEY

__all__ = [
    "APPLIED",
    "APPLYING",
    "DECIDED",
    "DEVELOPER_HISTORY",
    "ERROR",
    "FAILED",
    "FINAL_STATES",
    "INBOX_KEY",
    "INBOX_STATES",
    "IN_REVIEW",
    "LOCK_TTL",
    "LOG_HEAD_KEY",
    "LOG_KEY",
    "PREFIX",
    "RECORDS_KEY",
    "SETTLED_STATES",
    "SHADOWED",
    "SKIPPED",
    "UNFINISHED_KEY",
    "UNFINISHED_STATES",
    "WAITING",
    "WAITS_KEY",
    "Locked",
    "LogCheck",
    "Retention",
    "Store",
    "chain_hash",
    "check_chain",
    "export_line",
    "lock_key",
    "now_iso",
    "read_export",
    "state_key",
]
