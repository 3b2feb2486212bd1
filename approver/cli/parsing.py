"""Declaring commands: a group, and a command with its arguments and the function it runs."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Arg:
    """One argument, as `add_argument` takes it."""

    names: tuple[str, ...]
    options: dict


@dataclass(frozen=True)
class OneOf:
    """Arguments of which at most one (`required`: exactly one) may be given."""

    args: tuple[Arg, ...]
    required: bool = False


def count(text: str) -> int:
    """A whole number >= 0 (`--limit`, `--last`)."""
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"a whole number >= 0, got {text!r}")
    return int(text)


def arg(*names: str, **options) -> Arg:
    return Arg(names, options)


def one_of(*args: Arg, required: bool = False) -> OneOf:
    return OneOf(args, required)


def group(sub, name: str, help: str):
    """`approver NAME ...`: the subparsers its commands are declared on."""
    return sub.add_parser(name, help=help).add_subparsers(dest=f"{name}_command", required=True)


def command(sub, name: str, func: Callable, help: str, *arguments: Arg | OneOf,
            **defaults) -> argparse.ArgumentParser:
    """One command, its arguments in order, and the function that runs it."""
    parser = sub.add_parser(name, help=help)
    for item in arguments:
        if isinstance(item, OneOf):
            exclusive = parser.add_mutually_exclusive_group(required=item.required)
            for a in item.args:
                exclusive.add_argument(*a.names, **a.options)
        else:
            parser.add_argument(*item.names, **item.options)
    parser.set_defaults(func=func, **defaults)
    return parser
