"""The ``proteus`` console script: ``proteus demo | train | eval | data | route``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# (module, function) pairs that add one subcommand each; modules that are absent are skipped.
_SUBCOMMANDS: tuple[tuple[str, str], ...] = (
    ("agents.demo", "add_demo_subparser"),
    ("agents.train", "add_train_subparser"),
    ("agents.router", "add_route_subparser"),
    ("agents.evaluation", "add_eval_subparser"),
    ("agents.cli_data", "add_data_subparser"),
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(prog="proteus", description="SLA-aware LLM routing: the PROTEUS routing gym.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module_name, function in _SUBCOMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        getattr(module, function)(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    args = build_parser().parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:  # a subcommand module registered under another name
        handler = args.func
    try:
        return int(handler(args) or 0)
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
