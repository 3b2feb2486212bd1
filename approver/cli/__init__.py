"""The `approver` command."""

from __future__ import annotations

import argparse
import os
import sys

from redis.exceptions import RedisError

from approver import config, logs
from approver.cli import admin, billing, data, decisions, review, rules, service
from approver.errors import ApproverError
from approver.terminal import printable

# Commands that run as services, whose log is their output.
SERVICE_COMMANDS = ("web", "worker", "reconcile", "sandbox", "demo")


def parser() -> argparse.ArgumentParser:
    """The command line: each command group adds its own."""
    p = argparse.ArgumentParser(prog="approver", description=__doc__)
    p.add_argument("--log-level", metavar="LEVEL",
                   help="INFO for the service processes; WARNING for the other commands, "
                        "so a person at a terminal reads the answer, not the log")
    sub = p.add_subparsers(dest="command", required=True)
    service.add_processes(sub)
    decisions.add_commands(sub)
    service.add_operations(sub)
    billing.add_commands(sub)
    review.add_commands(sub)
    admin.add_commands(sub)
    rules.add_commands(sub)
    data.add_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command; errors we expect are one clear line and exit status 2."""
    args = parser().parse_args(argv)
    logs.setup((args.log_level or (
        "INFO" if args.command in SERVICE_COMMANDS else "WARNING")).upper())
    try:
        code = args.func(args)
        sys.stdout.flush()  # here, where a closed pipe is caught, not at exit
        return code
    except BrokenPipeError:
        # The reader stopped reading (`approver status | head`): stop quietly, as cat does.
        _stdout_to_devnull()
        return 141  # what a shell reports for a command ended by SIGPIPE
    except (ApproverError, OSError) as exc:  # OSError: a file named on the command line
        # Rule files' problems (RulesError) each on a line of their own, as `rules check`.
        for line in getattr(exc, "problems", None) or [exc]:
            print(f"approver: {printable(line)}", file=sys.stderr)
        return 2
    except RedisError as exc:
        from approver.state import connection

        print(f"approver: Redis ({connection.redis_target(config.from_env())}): "
              f"{printable(connection.describe_redis_error(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130

def _stdout_to_devnull() -> None:
    """Point stdout at /dev/null, so the flush at exit finds no closed pipe either."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a file (a test's capture): nothing is flushed to a pipe at exit
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)
